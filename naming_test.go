package qmp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// The naming rule of the typed layer (README, "Typed commands: names"):
//   - a Go name is the QAPI name in CamelCase, with initialisms upper-cased
//     as Go spells them (CPU, KVM, PCI, VNC, NBD, QOM, ID, FD, ...):
//     CPUInfoFast, QueryVNC, QOMGet;
//   - a command whose arguments QAPI declares inline takes <Command>Args
//     (BlockdevMirrorArgs); one whose arguments are a named QAPI type
//     takes that type (BlockdevOptions for blockdev-add).
//
// TestNamingRule enforces both on every exported identifier of the package.

// mixedInitialism matches an initialism spelt as a word (Cpu, Vnc, Id, ...)
// inside an exported name.
var mixedInitialism = regexp.MustCompile(`(Cpu|Kvm|Vnc|Pci|Usb|Qom|Nbd|Json|Uuid|Uri|Url|Qmp|Hmp|Oob|Sev|Tpm|Acpi|Vcpu|Numa|Fd|Id|Io)(s?[A-Z]|s?$)`)

// qapiNamedArgs are the commands' argument types that QAPI names.
var qapiNamedArgs = map[string]bool{"BlockdevOptions": true, "BlockIOThrottle": true, "MigrationParameters": true, "BlockExportOptions": true}

func TestNamingRule(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, pos token.Pos) {
		if ast.IsExported(name) && mixedInitialism.MatchString(name) {
			t.Errorf("%s: %s spells an initialism as a word (the rule: %s)", fset.Position(pos), name,
				mixedInitialism.ReplaceAllStringFunc(name, strings.ToUpper))
		}
	}
	for _, f := range pkgs["qmp"].Files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				check(d.Name.Name, d.Pos())
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						check(s.Name.Name, s.Pos())
						if st, ok := s.Type.(*ast.StructType); ok && ast.IsExported(s.Name.Name) {
							for _, fl := range st.Fields.List {
								for _, n := range fl.Names {
									check(n.Name, n.Pos())
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							check(n.Name, n.Pos())
						}
					}
				}
			}
		}
	}
	for _, c := range typedCommands {
		if n := c.args; n != nil && ast.IsExported(n.Name()) && !strings.HasSuffix(n.Name(), "Args") && !qapiNamedArgs[n.Name()] {
			t.Errorf("%s takes %s: inline arguments are named <Command>Args, a named QAPI type keeps its name", c.name, n.Name())
		}
	}
}
