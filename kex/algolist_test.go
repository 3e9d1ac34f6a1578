package kex

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestExpandAlgorithms(t *testing.T) {
	def := []string{"a-ctr", "b-ctr", "c-gcm"}
	sup := []string{"a-ctr", "b-ctr", "c-gcm", "x-cbc", "y-cbc"}
	for _, tc := range []struct {
		spec []string
		want string // comma-joined; "" for defaults
	}{
		{nil, "a-ctr,b-ctr,c-gcm"},
		{[]string{""}, "a-ctr,b-ctr,c-gcm"},
		{[]string{"x-cbc"}, "x-cbc"},
		{[]string{"y-cbc", "a-ctr"}, "y-cbc,a-ctr"},
		{[]string{"y-cbc,a-ctr,y-cbc"}, "y-cbc,a-ctr"},
		{[]string{"+x-cbc"}, "a-ctr,b-ctr,c-gcm,x-cbc"},
		{[]string{"+x-cbc", "y-cbc"}, "a-ctr,b-ctr,c-gcm,x-cbc,y-cbc"},
		{[]string{"+a-ctr"}, "a-ctr,b-ctr,c-gcm"},
		{[]string{"+*-ctr,y-cbc"}, "a-ctr,b-ctr,c-gcm,y-cbc"},
		{[]string{"*"}, "a-ctr,b-ctr,c-gcm"},
		{[]string{"?-*"}, "a-ctr,b-ctr,c-gcm"},
		{[]string{"^c-*,x-cbc"}, "c-gcm,x-cbc,a-ctr,b-ctr"},
		{[]string{"x-cbc,*"}, "x-cbc,a-ctr,b-ctr,c-gcm"},
		{[]string{"^y-cbc,x-cbc"}, "y-cbc,x-cbc,a-ctr,b-ctr,c-gcm"},
		{[]string{"^c-gcm"}, "c-gcm,a-ctr,b-ctr"},
		{[]string{"-b-ctr"}, "a-ctr,c-gcm"},
		{[]string{"-*-ctr"}, "c-gcm"},
		{[]string{"-?-gcm,a*"}, "b-ctr"},
		{[]string{" + x-cbc "}, "a-ctr,b-ctr,c-gcm,x-cbc"},
	} {
		got, err := ExpandAlgorithms(tc.spec, def, sup)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("ExpandAlgorithms(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
	for spec, name := range map[string]string{"nope": "nope", "+nope": "nope", "^a-ctr,nope": "nope", "-nope": "nope", "+z*": "z*", "-z*": "z*"} {
		_, err := ExpandAlgorithms([]string{spec}, def, sup)
		var ue *UnknownAlgorithmError
		if !errors.As(err, &ue) || ue.Name != name || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: err = %v, want *UnknownAlgorithmError naming %q", spec, err, name)
		}
	}
	if _, err := ExpandAlgorithms([]string{"-*"}, def, sup); err == nil {
		t.Error("a list that removes everything must be an error")
	}
	// The result never aliases the defaults.
	got, _ := ExpandAlgorithms(nil, def, sup)
	got[0] = "changed"
	if def[0] != "a-ctr" {
		t.Error("result aliases defaults")
	}
}

// A pattern in a list that is not a "-" list never stands for a name
// outside the defaults: those (the legacy ones) are offered only when
// written out. A pattern matching nothing but such names is an error
// naming them.
func TestExpandAlgorithmsPatternsSkipNonDefaults(t *testing.T) {
	def := []string{"a-ctr", "b-ctr", "c-gcm"}
	sup := []string{"a-ctr", "b-ctr", "c-gcm", "x-cbc", "y-cbc"}
	for _, spec := range []string{"*-cbc", "+*-cbc", "^x-*", "a-ctr,?-cbc"} {
		got, err := ExpandAlgorithms([]string{spec}, def, sup)
		var ue *UnknownAlgorithmError
		if !errors.As(err, &ue) || !slices.Equal(ue.Literal, []string{"x-cbc", "y-cbc"}) && !slices.Equal(ue.Literal, []string{"x-cbc"}) {
			t.Errorf("%q: %q, %v; want an *UnknownAlgorithmError listing the names to write out", spec, got, err)
			continue
		}
		if !strings.Contains(err.Error(), "x-cbc") || !strings.Contains(err.Error(), "named in full") {
			t.Errorf("%q: message %q", spec, err)
		}
	}
}

// TestExpandAlgorithmsRealPatterns: on the real lists, patterns never add
// a legacy algorithm (OpenSSH refuses patterns in positive Ciphers, MACs
// and KexAlgorithms lists; sshtap lets them stand for default names only).
func TestExpandAlgorithmsRealPatterns(t *testing.T) {
	for _, tc := range []struct {
		spec                string
		defaults, supported []string
	}{
		{"diffie-hellman-*", DefaultKexAlgos, SupportedKexAlgos},
		{"+diffie-hellman-group*", DefaultKexAlgos, SupportedKexAlgos},
		{"*", DefaultKexAlgos, SupportedKexAlgos},
		{"ssh-*", DefaultHostKeyAlgos, SupportedHostKeyAlgos},
		{"*", DefaultHostKeyAlgos, SupportedHostKeyAlgos},
		{"+*-cert-v01@openssh.com", DefaultHostKeyAlgos, SupportedHostKeyAlgos},
	} {
		got, err := ExpandAlgorithms([]string{tc.spec}, tc.defaults, tc.supported)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if i := slices.IndexFunc(got, IsLegacy); i >= 0 {
			t.Errorf("%q: %q includes the legacy %s", tc.spec, got, got[i])
		}
	}
}

// TestExpandAlgorithmsReal: "+legacy" on the real lists adds exactly the
// legacy name at the end.
func TestExpandAlgorithmsReal(t *testing.T) {
	got, err := ExpandAlgorithms([]string{"+" + DHGroup1SHA1}, DefaultKexAlgos, SupportedKexAlgos)
	if err != nil || !slices.Equal(got, append(slices.Clone(DefaultKexAlgos), DHGroup1SHA1)) {
		t.Fatalf("+group1: %v, %v", got, err)
	}
	got, err = ExpandAlgorithms([]string{"^ssh-rsa"}, DefaultHostKeyAlgos, SupportedHostKeyAlgos)
	if err != nil || got[0] != HostKeyRSA || len(got) != len(DefaultHostKeyAlgos)+1 {
		t.Fatalf("^ssh-rsa: %v, %v", got, err)
	}
}

func TestMatchAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		p, n string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abc", true}, {"a*c", "ab", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*-cbc", "aes128-cbc", true},
		{"*-cbc", "aes128-ctr", false}, {"aes*", "aes", true}, {"a**b", "axxb", true}, {"abc", "abcd", false},
	} {
		if got := matchAlgorithm(tc.p, tc.n); got != tc.want {
			t.Errorf("matchAlgorithm(%q, %q) = %v", tc.p, tc.n, got)
		}
	}
}
