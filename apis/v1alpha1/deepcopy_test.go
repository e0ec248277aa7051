package v1alpha1_test

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/rauta/rauta/apis/v1alpha1"
)

// fill sets every field reachable from v to a non-zero value: pointers
// allocated, slices and maps given one element. Types with hidden state
// (Quantity, Time) get a valid value of their own.
func fill(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[resource.Quantity]():
		v.Set(reflect.ValueOf(resource.MustParse("1Mi")))
		return
	case reflect.TypeFor[metav1.Time]():
		v.Set(reflect.ValueOf(metav1.Unix(1, 0)))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	}
}

// shared returns the paths where a and b hold the same pointer, slice
// array or map: memory a deep copy must not share.
func shared(a, b reflect.Value, path string) []string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return nil
		}
		if a.Pointer() == b.Pointer() {
			return []string{path}
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return nil
		}
		if a.Pointer() == b.Pointer() {
			return []string{path}
		}
		var out []string
		for i := range a.Len() {
			out = append(out, shared(a.Index(i), b.Index(i), path+"[]")...)
		}
		return out
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return []string{path}
		}
	case reflect.Struct:
		var out []string
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				out = append(out, shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)...)
			}
		}
		return out
	}
	return nil
}

// TestDeepCopy checks the generated DeepCopy methods against the types:
// a copy of an object with every field set is equal to it and shares no
// memory with it. A field added without running hack/gen-api is copied
// shallowly and fails here.
func TestDeepCopy(t *testing.T) {
	for _, obj := range []runtime.Object{
		&v1alpha1.BackendPolicy{}, &v1alpha1.BackendPolicyList{},
		&v1alpha1.TrafficPolicy{}, &v1alpha1.TrafficPolicyList{},
	} {
		fill(reflect.ValueOf(obj).Elem())
		cp := obj.DeepCopyObject()
		name := reflect.TypeOf(obj).Elem().Name()
		if d := cmp.Diff(obj, cp); d != "" {
			t.Errorf("%s: copy differs (-original +copy):\n%s", name, d)
		}
		for _, p := range shared(reflect.ValueOf(obj), reflect.ValueOf(cp), name) {
			t.Errorf("%s: the copy shares memory with the original", p)
		}
	}
}
