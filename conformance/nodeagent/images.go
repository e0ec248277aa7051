package nodeagent

import (
	"fmt"
	"strings"
)

// Images maps container images to the local programs that stand for them.
// The key is an image repository without tag or digest, e.g.
// "registry.k8s.io/gateway-api/echo-basic"; the value is the command line
// (program and leading arguments) that plays the image's entrypoint. A
// container's args are appended to it; a container's command, when set,
// cannot be honoured (the image's files do not exist here) and makes the
// container fail to be created.
type Images map[string][]string

// ParseImage parses a mapping written "REPOSITORY=PROGRAM [ARG...]" (the
// form of the agent's --image flag) and adds it to m.
func (m Images) ParseImage(s string) error {
	repo, cmd, ok := strings.Cut(s, "=")
	repo = strings.TrimSpace(repo)
	argv := strings.Fields(cmd)
	if !ok || repo == "" || len(argv) == 0 {
		return fmt.Errorf("image mapping %q: want REPOSITORY=PROGRAM [ARG...]", s)
	}
	if r, _ := splitImage(repo); r != repo {
		return fmt.Errorf("image mapping %q: the repository must not carry a tag or digest", s)
	}
	m[repo] = argv
	return nil
}

// Lookup returns the command line standing for image, ignoring its tag and
// digest.
func (m Images) Lookup(image string) ([]string, bool) {
	repo, _ := splitImage(image)
	argv, ok := m[repo]
	return argv, ok
}

// splitImage splits an image reference into repository and tag or digest
// ("" when absent). A colon belongs to the tag only after the last slash, so
// "host:5000/name" has no tag.
func splitImage(image string) (repo, ref string) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		return image[:i], image[i+1:]
	}
	slash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > slash {
		return image[:i], image[i+1:]
	}
	return image, ""
}

// commandFor builds the argv of a container: the image's command line
// followed by the container's args. A container that overrides the image's
// entrypoint (spec.containers[].command) names a file of the image, which
// does not exist here, so it is refused.
func commandFor(image string, base, command, args []string) ([]string, error) {
	if len(command) > 0 {
		return nil, fmt.Errorf("image %s: the local stand-in cannot run command %q in place of its entrypoint", image, command)
	}
	argv := append([]string(nil), base...)
	return append(argv, args...), nil
}
