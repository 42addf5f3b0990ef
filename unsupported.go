package qmp

// Commands and members the connected QEMU does not have
//
// Distributions ship QEMU 5.2 to 11.x, and the typed layer covers the union
// of them: a typed call may name a command or member the connected QEMU
// lacks (too old, or removed since). It then fails with an
// *UnsupportedError rather than a bare "Parameter ... is unexpected".

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// UnsupportedError is returned by a typed call that uses a command or an
// argument member the connected QEMU does not have. When the schema has
// been fetched (Schema), the call is refused before anything is sent and
// Err is nil; typed calls never fetch the schema themselves. Otherwise
// QEMU's own refusal (CommandNotFound, "Parameter 'x' is unexpected") is
// recognised and kept in Err, so errors.As(err, &ge) with a *GenericError
// holds as before. errors.Is(err, errors.ErrUnsupported) holds too. Run
// with untyped commands never returns it.
type UnsupportedError struct {
	// Path names what is missing, as a schema path: "job-pause",
	// "migrate-set-parameters.compress-level".
	Path string
	// Version is the connected QEMU's.
	Version Version
	// Since is the first QEMU version that has it, and Until the last,
	// where the package knows them ("" otherwise).
	Since, Until string
	// Err is QEMU's refusal, when the command was sent.
	Err error
}

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "qmp: QEMU %v does not have %s", e.Version, e.Path)
	switch {
	case e.Since != "" && e.Until != "":
		fmt.Fprintf(&b, " (QEMU %s to %s have it)", e.Since, e.Until)
	case e.Since != "":
		fmt.Fprintf(&b, " (QEMU %s and later have it)", e.Since)
	case e.Until != "":
		fmt.Fprintf(&b, " (QEMU %s was the last to have it)", e.Until)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *UnsupportedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errors.ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

// unsupported returns the *UnsupportedError for path on m's QEMU.
func (m *Monitor) unsupported(path string, cause error) *UnsupportedError {
	h := versionHistory[path]
	return &UnsupportedError{Path: path, Version: m.version, Since: h.since, Until: h.until, Err: cause}
}

// checkSupported refuses a typed command that names a command or a
// top-level argument member of its Go type (declared) that the connected
// QEMU's schema lacks, when the schema is known; args is the encoded
// arguments (nil: none). A QEMU that hides deprecated things from its
// schema (-compat deprecated-output=hide) still accepts them, so its
// schema cannot tell: QEMU's own refusal is recognised instead.
func (m *Monitor) checkSupported(name string, args []byte, declared map[string]bool) error {
	s := m.schema.known.Load()
	if s == nil || s.hidesDeprecated {
		return nil
	}
	c := s.Command(name)
	if c == nil {
		return m.unsupported(name, nil)
	}
	var missing string
	eachMember(args, func(k, _ []byte) {
		if name := memberName(k); missing == "" && declared[name] && c.Args.Member(name, "") == nil && !anyBranchHas(c.Args, name) {
			missing = name
		}
	})
	if missing != "" {
		return m.unsupported(name+"."+missing, nil)
	}
	return nil
}

// anyBranchHas reports whether a branch of union t has member name.
func anyBranchHas(t *SchemaType, name string) bool {
	for _, v := range t.Variants {
		if v.Type.ownMember(name) != nil {
			return true
		}
	}
	return false
}

// recogniseUnsupported wraps QEMU's refusal of command name in an
// *UnsupportedError when it says the command or a member is not there:
// CommandNotFound's "The command NAME has not been found" (not a
// command disabled by -compat policy), or the input visitor's
// "Parameter 'MEMBER' is unexpected", MEMBER a nested member's full name
// ("channels[0].addr.foo", a path "migrate.channels.addr.foo"). With the
// schema known, a path it has is not missing, only misplaced (a member of
// another union branch): that refusal stays QEMU's alone.
func (m *Monitor) recogniseUnsupported(name string, err error) error {
	var ge *GenericError
	if !errors.As(err, &ge) {
		return err
	}
	path := ""
	if ge.Class == "CommandNotFound" {
		if ge.Desc == "The command "+name+" has not been found" {
			path = name
		}
	} else if rest, ok := strings.CutPrefix(ge.Desc, "Parameter '"); ok {
		if member, ok := strings.CutSuffix(rest, "' is unexpected"); ok && member != "" && !strings.ContainsAny(member, "'#=") {
			path = name + "." + listIndex.ReplaceAllString(member, "")
		}
	}
	if path == "" {
		return err
	}
	if s := m.schema.known.Load(); s != nil && !s.hidesDeprecated && s.Has(path) {
		return err
	}
	return m.unsupported(path, err)
}

// listIndex is an element's index in QEMU's name of a nested member.
var listIndex = regexp.MustCompile(`\[[0-9]+\]`)

// versionHistory is what the typed layer's doc comments say of the
// commands and argument members only some QEMU versions have, by schema
// path (TestVersionHistory keeps it equal to them).
var versionHistory = map[string]struct{ since, until string }{
	"blockdev-change-medium.force":              {"7.1", ""},
	"migrate-incoming.channels":                 {"8.2", ""},
	"migrate-incoming.exit-on-error":            {"9.1", ""},
	"migrate-set-parameters.block-incremental":  {"", "9.0"},
	"migrate-set-parameters.compress-level":     {"", "9.0"},
	"migrate-set-parameters.compress-threads":   {"", "9.0"},
	"migrate-set-parameters.decompress-threads": {"", "9.0"},
	"migrate.channels":                          {"8.2", ""},
	"screendump.format":                         {"7.1", ""},
}
