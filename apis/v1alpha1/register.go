package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of rauta's own resources.
const GroupName = "gateway.rauta.io"

// GroupVersion is the group and version of the types of this package.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// The resources of the group, for dynamic clients and informers.
var (
	// BackendPolicyResource is the resource of [BackendPolicy] objects.
	BackendPolicyResource = GroupVersion.WithResource("backendpolicies")
	// TrafficPolicyResource is the resource of [TrafficPolicy] objects.
	TrafficPolicyResource = GroupVersion.WithResource("trafficpolicies")
)

// The kinds of the group.
var (
	// BackendPolicyKind is the group, version and kind of [BackendPolicy].
	BackendPolicyKind = GroupVersion.WithKind("BackendPolicy")
	// TrafficPolicyKind is the group, version and kind of [TrafficPolicy].
	TrafficPolicyKind = GroupVersion.WithKind("TrafficPolicy")
)

var (
	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds BackendPolicy, TrafficPolicy and their lists to a
	// scheme, with the meta types (ListOptions, WatchEvent...) of the
	// group version.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource returns the group and resource of a resource name of this
// group, such as "backendpolicies".
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&BackendPolicy{},
		&BackendPolicyList{},
		&TrafficPolicy{},
		&TrafficPolicyList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
