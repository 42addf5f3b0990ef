package qmptest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// builtinHandlers returns the commands of the simulated QEMU. They keep
// just enough state (run state, devices, fds) for plausible sequences.
func builtinHandlers() map[string]HandlerFunc {
	return map[string]HandlerFunc{
		"qmp_capabilities":      hCapabilities,
		"query-version":         hQueryVersion,
		"query-status":          hQueryStatus,
		"query-name":            simple(nil),
		"query-commands":        hQueryCommands,
		"stop":                  hStop,
		"cont":                  hCont,
		"system_reset":          hSystemReset,
		"system_powerdown":      hSystemPowerdown,
		"quit":                  hQuit,
		"device_add":            hDeviceAdd,
		"device_del":            hDeviceDel,
		"human-monitor-command": hHMP,
		"block-job-cancel":      hBlockJobCancel,
		"transaction":           hTransaction,
		"getfd":                 hGetfd,
		"closefd":               hClosefd,
		"add-fd":                hAddFd,
		"remove-fd":             hRemoveFd,
		"query-fdsets":          hQueryFdsets,
		"migrate-pause":         hMigratePause,
		"migrate-recover":       hMigrateRecover,
		"yank":                  hYank,
		"query-yank":            simple(json.RawMessage(`[{"type":"chardev","id":"qmp0"}]`)),
		"query-qmp-schema":      hQueryQMPSchema,
	}
}

// errReply builds an error Reply.
func errReply(class, format string, a ...any) Reply {
	return Reply{ErrClass: class, ErrDesc: fmt.Sprintf(format, a...)}
}

// args parses r.Arguments and rejects members not listed in known, with
// QEMU's wording.
func args(r *Request, known ...string) (map[string]json.RawMessage, *Reply) {
	m := map[string]json.RawMessage{}
	if r.Arguments == nil {
		return m, nil
	}
	ms, err := objectMembers(r.Arguments)
	if err != nil {
		e := errReply(classGeneric, "QMP input member 'arguments' must be an object")
		return nil, &e
	}
	for _, mb := range ms {
		ok := known == nil
		for _, k := range known {
			ok = ok || k == mb.key
		}
		if !ok {
			e := errReply(classGeneric, "Parameter '%s' is unexpected", mb.key)
			return nil, &e
		}
		m[mb.key] = mb.val
	}
	return m, nil
}

// strArg extracts a string argument; required ones produce QEMU's
// "Parameter 'x' is missing".
func strArg(m map[string]json.RawMessage, name string, required bool) (string, *Reply) {
	v, ok := m[name]
	if !ok {
		if required {
			e := errReply(classGeneric, "Parameter '%s' is missing", name)
			return "", &e
		}
		return "", nil
	}
	var str string
	if jsonKind(v) != '"' || json.Unmarshal(v, &str) != nil {
		e := errReply(classGeneric, "Invalid parameter type for '%s', expected: string", name)
		return "", &e
	}
	return str, nil
}

// intArg extracts an integer argument; present reports whether it was
// given.
func intArg(m map[string]json.RawMessage, name string, required bool) (n int64, present bool, rep *Reply) {
	v, ok := m[name]
	if !ok {
		if required {
			e := errReply(classGeneric, "Parameter '%s' is missing", name)
			return 0, false, &e
		}
		return 0, false, nil
	}
	if err := json.Unmarshal(v, &n); err != nil {
		e := errReply(classGeneric, "Invalid parameter type for '%s', expected: integer", name)
		return 0, false, &e
	}
	return n, true, nil
}

// simple returns a handler for an argument-less command with a fixed
// return value (nil for {}).
func simple(ret json.RawMessage) HandlerFunc {
	return func(_ *Server, r *Request) Reply {
		if _, e := args(r, ""); e != nil {
			return *e
		}
		return Reply{RawReturn: ret}
	}
}

func hCapabilities(s *Server, r *Request) Reply {
	var enable []string
	m, e := args(r, "enable")
	if e != nil {
		return *e
	}
	if v, ok := m["enable"]; ok {
		if err := json.Unmarshal(v, &enable); err != nil {
			return errReply(classGeneric, "Invalid parameter type for 'enable', expected: array")
		}
	}
	for _, c := range enable {
		if c != "oob" {
			// QEMU's wording for a value outside the QMPCapability enum.
			return errReply(classGeneric, "Parameter 'null' does not accept value '%s'", c)
		}
		offered := false
		for _, o := range s.cfg.Capabilities {
			offered = offered || o == c
		}
		if !offered {
			return errReply(classGeneric, "Capability '%s' not available", c)
		}
	}
	if cs := s.current(); cs != nil {
		s.negotiate(cs, enable)
	}
	if s.cfg.EventBeforeNegotiationReply {
		s.SendEvent("PRE_NEGOTIATION", nil)
	}
	return Reply{}
}

// versionJSON is the version object shared by the greeting and
// query-version, in QEMU's key order.
func (s *Server) versionJSON() json.RawMessage {
	var major, minor, micro int
	fmt.Sscanf(s.cfg.Version, "%d.%d.%d", &major, &minor, &micro)
	return json.RawMessage(fmt.Sprintf(`{"qemu":{"micro":%d,"minor":%d,"major":%d},"package":"qmptest"}`, micro, minor, major))
}

func hQueryVersion(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	return Reply{RawReturn: s.versionJSON()}
}

// statusInfo mirrors QEMU's StatusInfo with its key order.
type statusInfo struct {
	Status     string `json:"status"`
	Singlestep bool   `json:"singlestep"`
	Running    bool   `json:"running"`
}

func hQueryStatus(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	st := statusInfo{Status: "paused"}
	if running {
		st = statusInfo{Status: "running", Running: true}
	}
	return Reply{Return: st}
}

func hQueryCommands(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	type info struct {
		Name string `json:"name"`
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.handlers))
	for n := range s.handlers {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	list := make([]info, len(names))
	for i, n := range names {
		list[i] = info{n}
	}
	return Reply{Return: list}
}

// setRunning changes the run state, emitting event only on an actual
// change (QEMU's stop on a stopped VM is silent).
func (s *Server) setRunning(running bool, event string) {
	s.mu.Lock()
	changed := s.running != running
	s.running = running
	s.mu.Unlock()
	if changed {
		s.SendEvent(event, nil)
	}
}

func hStop(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.setRunning(false, "STOP")
	return Reply{}
}

func hCont(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.setRunning(true, "RESUME")
	return Reply{}
}

// shutdownInfo is the data of RESET and SHUTDOWN events.
type shutdownInfo struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

func hSystemReset(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.SendEvent("RESET", shutdownInfo{Reason: "host-qmp-system-reset"})
	return Reply{}
}

func hSystemPowerdown(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.SendEvent("POWERDOWN", nil)
	return Reply{}
}

// hQuit emits SHUTDOWN, replies, then hangs up and stops listening, as
// QEMU exits: later connection attempts fail.
func hQuit(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	s.SendEvent("SHUTDOWN", shutdownInfo{Reason: "host-qmp-quit"})
	return Reply{after: func() {
		s.ln.Close()
		if cs := s.current(); cs != nil {
			cs.abort()
		}
	}}
}

func hDeviceAdd(s *Server, r *Request) Reply {
	m, e := args(r) // device properties are free-form
	if e != nil {
		return *e
	}
	if _, e := strArg(m, "driver", true); e != nil {
		return *e
	}
	id, e := strArg(m, "id", false)
	if e != nil {
		return *e
	}
	if id != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.devices[id] {
			return errReply(classGeneric, "Duplicate device ID '%s' for device", id)
		}
		s.devices[id] = true
	}
	return Reply{}
}

func hDeviceDel(s *Server, r *Request) Reply {
	m, e := args(r, "id")
	if e != nil {
		return *e
	}
	id, e := strArg(m, "id", true)
	if e != nil {
		return *e
	}
	s.mu.Lock()
	found := s.devices[id]
	delete(s.devices, id)
	s.mu.Unlock()
	if !found {
		return errReply(classDeviceNotFound, "Device '%s' not found", id)
	}
	type deleted struct {
		Device string `json:"device"`
		Path   string `json:"path"`
	}
	// QEMU completes an immediate unplug after the reply is written.
	return Reply{after: func() {
		s.SendEvent("DEVICE_DELETED", deleted{id, "/machine/peripheral/" + id})
	}}
}

func hHMP(s *Server, r *Request) Reply {
	m, e := args(r, "command-line", "cpu-index")
	if e != nil {
		return *e
	}
	line, e := strArg(m, "command-line", true)
	if e != nil {
		return *e
	}
	words := strings.Fields(line)
	var out string
	switch {
	case len(words) == 0:
		out = ""
	case len(words) == 2 && words[0] == "info" && words[1] == "version":
		out = s.cfg.Version + " (qmptest)\r\n"
	case len(words) == 2 && words[0] == "info" && words[1] == "status":
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if running {
			out = "VM status: running\r\n"
		} else {
			out = "VM status: paused\r\n"
		}
	case len(words) == 2 && words[0] == "info" && words[1] == "name":
		out = ""
	case len(words) == 1 && words[0] == "stop":
		s.setRunning(false, "STOP")
	case len(words) == 1 && words[0] == "cont":
		s.setRunning(true, "RESUME")
	default:
		out = fmt.Sprintf("unknown command: '%s'\r\n", strings.Join(words, " "))
	}
	return Reply{Return: out}
}

func hBlockJobCancel(_ *Server, r *Request) Reply {
	m, e := args(r, "device", "force")
	if e != nil {
		return *e
	}
	dev, e := strArg(m, "device", true)
	if e != nil {
		return *e
	}
	// No block jobs are simulated.
	return errReply(classDeviceNotActive, "Block job '%s' not found", dev)
}

func hTransaction(_ *Server, r *Request) Reply {
	if _, e := args(r, "actions", "properties"); e != nil {
		return *e
	}
	return Reply{}
}

const noFD = "No file descriptor supplied via SCM_RIGHTS"

func hGetfd(s *Server, r *Request) Reply {
	m, e := args(r, "fdname")
	if e != nil {
		return *e
	}
	name, e := strArg(m, "fdname", true)
	if e != nil {
		return *e
	}
	if r.FD == nil {
		return errReply(classGeneric, noFD)
	}
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		return errReply(classGeneric, "Parameter 'fdname' expects a name not starting with a digit")
	}
	f := r.FD
	r.FD = nil // claimed: the server keeps it until closefd or Close
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.namedFDs[name]; old != nil {
		old.Close()
	}
	s.namedFDs[name] = f
	return Reply{}
}

func hClosefd(s *Server, r *Request) Reply {
	m, e := args(r, "fdname")
	if e != nil {
		return *e
	}
	name, e := strArg(m, "fdname", true)
	if e != nil {
		return *e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.namedFDs[name]
	if f == nil {
		return errReply(classGeneric, "File descriptor named '%s' not found", name)
	}
	f.Close()
	delete(s.namedFDs, name)
	return Reply{}
}

// fdset is one fd set of add-fd; fds are owned by the server.
type fdset struct {
	id  int64
	fds []fdsetFD
}

type fdsetFD struct {
	f      *os.File
	fd     int64
	opaque *string
}

// clearFdsetsLocked closes all fd sets; s.mu must be held.
func (s *Server) clearFdsetsLocked() {
	for _, set := range s.fdsets {
		for _, f := range set.fds {
			f.f.Close()
		}
	}
	s.fdsets = nil
}

func hAddFd(s *Server, r *Request) Reply {
	m, e := args(r, "fdset-id", "opaque")
	if e != nil {
		return *e
	}
	id, hasID, e := intArg(m, "fdset-id", false)
	if e != nil {
		return *e
	}
	var opaque *string
	if _, ok := m["opaque"]; ok {
		o, e := strArg(m, "opaque", false)
		if e != nil {
			return *e
		}
		opaque = &o
	}
	if r.FD == nil {
		return errReply(classGeneric, noFD)
	}
	f := r.FD
	r.FD = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if !hasID {
		// Like QEMU, use the lowest free fdset id.
		for used := true; used; {
			used = false
			for _, set := range s.fdsets {
				if set.id == id {
					used = true
					id++
					break
				}
			}
		}
	}
	var set *fdset
	for _, st := range s.fdsets {
		if st.id == id {
			set = st
		}
	}
	if set == nil {
		set = &fdset{id: id}
		s.fdsets = append(s.fdsets, set)
	}
	fd := int64(f.Fd())
	set.fds = append(set.fds, fdsetFD{f: f, fd: fd, opaque: opaque})
	return Reply{Return: struct {
		FD      int64 `json:"fd"`
		FdsetID int64 `json:"fdset-id"`
	}{fd, id}}
}

func hRemoveFd(s *Server, r *Request) Reply {
	m, e := args(r, "fdset-id", "fd")
	if e != nil {
		return *e
	}
	id, _, e := intArg(m, "fdset-id", true)
	if e != nil {
		return *e
	}
	fd, hasFD, e := intArg(m, "fd", false)
	if e != nil {
		return *e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, set := range s.fdsets {
		if set.id != id {
			continue
		}
		if !hasFD {
			for _, f := range set.fds {
				f.f.Close()
			}
			s.fdsets = append(s.fdsets[:i], s.fdsets[i+1:]...)
			return Reply{}
		}
		for j, f := range set.fds {
			if f.fd == fd {
				f.f.Close()
				set.fds = append(set.fds[:j], set.fds[j+1:]...)
				if len(set.fds) == 0 {
					s.fdsets = append(s.fdsets[:i], s.fdsets[i+1:]...)
				}
				return Reply{}
			}
		}
	}
	if hasFD {
		return errReply(classGeneric, "File descriptor named 'fdset-id:%d, fd:%d' not found", id, fd)
	}
	return errReply(classGeneric, "File descriptor named 'fdset-id:%d' not found", id)
}

func hQueryFdsets(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	type fdInfo struct {
		FD     int64   `json:"fd"`
		Opaque *string `json:"opaque,omitempty"`
	}
	type setInfo struct {
		FDs     []fdInfo `json:"fds"`
		FdsetID int64    `json:"fdset-id"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []setInfo{}
	for _, set := range s.fdsets {
		si := setInfo{FDs: []fdInfo{}, FdsetID: set.id}
		for _, f := range set.fds {
			si.FDs = append(si.FDs, fdInfo{f.fd, f.opaque})
		}
		list = append(list, si)
	}
	return Reply{Return: list}
}

func hMigratePause(_ *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	return errReply(classGeneric, "migrate-pause is currently only supported during postcopy-active state")
}

func hMigrateRecover(_ *Server, r *Request) Reply {
	if _, e := args(r, "uri"); e != nil {
		return *e
	}
	return errReply(classGeneric, "Migrate recover can only be run when postcopy is paused.")
}

func hYank(_ *Server, r *Request) Reply {
	if _, e := args(r, "instances"); e != nil {
		return *e
	}
	return Reply{}
}

// hQueryQMPSchema answers with Config.Schema, or QEMU 7.2's.
func hQueryQMPSchema(s *Server, r *Request) Reply {
	if _, e := args(r, ""); e != nil {
		return *e
	}
	if s.cfg.Schema != nil {
		return Reply{RawReturn: s.cfg.Schema}
	}
	return Reply{RawReturn: QEMU72Schema}
}
