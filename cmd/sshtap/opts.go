package main

import (
	"fmt"
	"strings"
)

// usageError is a bad command line: it is printed with the usage line and
// exits 255, as ssh does.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string { return e.msg }

// opt is one command-line option. Short options follow getopt: they bundle
// (-At), take their value attached or as the next argument (-p2222, -p 2222).
// Long options take --name=value or --name value.
type opt struct {
	short byte   // 0: none
	long  string // "": none
	arg   bool   // takes a value
	set   func(v string) error
}

// parseOpts parses args against opts. It stops at the first argument that is
// not an option (or after "--") when stopAtArg is set, as ssh stops at the
// destination so the remote command keeps its own flags; otherwise
// positional arguments are an error. It returns the arguments left.
func parseOpts(args []string, opts []opt, stopAtArg bool, usage string) ([]string, error) {
	bad := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf(format, a...), usage: usage}
	}
	find := func(short byte, long string) *opt {
		for i := range opts {
			if (short != 0 && opts[i].short == short) || (long != "" && opts[i].long == long) {
				return &opts[i]
			}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[i+1:], nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o := find(0, name)
			if o == nil {
				return nil, bad("unknown option --%s", name)
			}
			if o.arg && !hasVal {
				if i+1 >= len(args) {
					return nil, bad("option --%s needs a value", name)
				}
				i++
				val = args[i]
			} else if !o.arg && hasVal {
				return nil, bad("option --%s takes no value", name)
			}
			if err := o.set(val); err != nil {
				return nil, bad("--%s: %v", name, err)
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := find(a[j], "")
				if o == nil {
					return nil, bad("unknown option -%c", a[j])
				}
				if !o.arg {
					if err := o.set(""); err != nil {
						return nil, bad("-%c: %v", a[j], err)
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, bad("option -%c needs a value", a[j])
					}
					i++
					val = args[i]
				}
				if err := o.set(val); err != nil {
					return nil, bad("-%c: %v", a[j], err)
				}
				break
			}
		default:
			if stopAtArg {
				return args[i:], nil
			}
			return nil, bad("unexpected argument %q", a)
		}
	}
	return nil, nil
}

// flagOpt is a boolean option.
func flagOpt(short byte, long string, p *bool) opt {
	return opt{short: short, long: long, set: func(string) error { *p = true; return nil }}
}

// stringOpt is an option with a value; the last one given wins.
func stringOpt(short byte, long string, p *string) opt {
	return opt{short: short, long: long, arg: true, set: func(v string) error { *p = v; return nil }}
}

// listOpt is a repeatable option collecting every value.
func listOpt(short byte, long string, p *[]string) opt {
	return opt{short: short, long: long, arg: true, set: func(v string) error { *p = append(*p, v); return nil }}
}
