package gatewayapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayStatuses returns the status of every handled Gateway and of the
// ListenerSets attached to them, once routes have been counted.
func (t *translator) gatewayStatuses() ([]GatewayStatus, []ListenerSetStatus) {
	var gws []GatewayStatus
	for _, g := range t.gatewayList {
		gen := g.gw.Generation
		st := GatewayStatus{Namespace: g.key.ns, Name: g.key.name, Generation: gen}
		accepted := g.accepted.Status == metav1.ConditionTrue
		if accepted {
			st.Status.Addresses = g.statusAddress
		}
		st.Status.Conditions = append([]metav1.Condition{g.accepted, g.programmed}, g.tlsConditions()...)
		st.Status.Listeners = []gatewayv1.ListenerStatus{}
		for _, l := range g.listeners {
			st.Status.Listeners = append(st.Status.Listeners, gatewayv1.ListenerStatus{
				Name:           l.spec.Name,
				SupportedKinds: l.kinds,
				AttachedRoutes: l.attached,
				Conditions:     l.conditions(gen),
			})
		}
		var n int32
		for _, s := range g.sets {
			if accepted && s.allowed && s.anyValid() {
				n++
			}
		}
		st.Status.AttachedListenerSets = new(n)
		gws = append(gws, st)
	}
	var lss []ListenerSetStatus
	for _, s := range t.lsList {
		gen := s.ls.Generation
		st := ListenerSetStatus{Namespace: s.key.ns, Name: s.key.name, Generation: gen}
		var acc, prog metav1.Condition
		switch {
		case !s.allowed:
			msg := "Gateway " + s.gw.key.String() + " does not allow ListenerSets from namespace " + s.key.ns
			acc = condition(gatewayv1.ListenerSetConditionAccepted, false, gatewayv1.ListenerSetReasonNotAllowed, msg, gen)
			prog = condition(gatewayv1.ListenerSetConditionProgrammed, false, gatewayv1.ListenerSetReasonNotAllowed, msg, gen)
		case s.gw.accepted.Status != metav1.ConditionTrue:
			msg := "Gateway " + s.gw.key.String() + " is not accepted"
			acc = condition(gatewayv1.ListenerSetConditionAccepted, false, gatewayv1.ListenerSetReasonParentNotAccepted, msg, gen)
			prog = condition(gatewayv1.ListenerSetConditionProgrammed, false, gatewayv1.ListenerSetReasonParentNotAccepted, msg, gen)
		case !s.anyValid():
			msg := "no listener is valid: " + listenerProblems(s.listeners)
			acc = condition(gatewayv1.ListenerSetConditionAccepted, false, gatewayv1.ListenerSetReasonListenersNotValid, msg, gen)
			prog = condition(gatewayv1.ListenerSetConditionProgrammed, false, gatewayv1.ListenerSetReasonListenersNotValid, msg, gen)
		default:
			if p := listenerProblems(s.listeners); p != "" {
				acc = condition(gatewayv1.ListenerSetConditionAccepted, true, gatewayv1.ListenerSetReasonListenersNotValid, "some listeners are not valid: "+p, gen)
			} else {
				acc = condition(gatewayv1.ListenerSetConditionAccepted, true, gatewayv1.ListenerSetReasonAccepted, "ListenerSet accepted", gen)
			}
			if s.anyProgrammed() {
				prog = condition(gatewayv1.ListenerSetConditionProgrammed, true, gatewayv1.ListenerSetReasonProgrammed, "ListenerSet programmed", gen)
			} else {
				prog = condition(gatewayv1.ListenerSetConditionProgrammed, false, gatewayv1.ListenerSetReasonInvalid, "no listener is programmed", gen)
			}
		}
		st.Status.Conditions = []metav1.Condition{acc, prog}
		if s.allowed {
			for _, l := range s.listeners {
				st.Status.Listeners = append(st.Status.Listeners, gatewayv1.ListenerEntryStatus{
					Name:           l.spec.Name,
					SupportedKinds: l.kinds,
					AttachedRoutes: l.attached,
					Conditions:     l.conditions(gen),
				})
			}
		}
		lss = append(lss, st)
	}
	return gws, lss
}

func (s *listenerSetState) anyValid() bool {
	for _, l := range s.listeners {
		if l.valid() {
			return true
		}
	}
	return false
}

func (s *listenerSetState) anyProgrammed() bool {
	for _, l := range s.listeners {
		if l.programmed() {
			return true
		}
	}
	return false
}
