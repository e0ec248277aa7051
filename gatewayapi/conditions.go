package gatewayapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// condition returns a condition with a zero LastTransitionTime.
func condition[T ~string, R ~string](typ T, ok bool, reason R, msg string, gen int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type:               string(typ),
		Status:             s,
		ObservedGeneration: gen,
		Reason:             string(reason),
		Message:            msg,
	}
}
