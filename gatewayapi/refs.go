package gatewayapi

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// granted reports whether a ReferenceGrant in toNS allows objects of
// fromGroup/fromKind in fromNS to refer to the toGroup/toKind object named
// toName.
func (t *translator) granted(fromGroup gatewayv1.Group, fromKind gatewayv1.Kind, fromNS string, toGroup gatewayv1.Group, toKind gatewayv1.Kind, toNS, toName string) bool {
	for _, g := range t.grants[toNS] {
		from := false
		for _, f := range g.Spec.From {
			if f.Group == fromGroup && f.Kind == fromKind && string(f.Namespace) == fromNS {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, to := range g.Spec.To {
			if to.Group == toGroup && to.Kind == toKind && (to.Name == nil || *to.Name == "" || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}
