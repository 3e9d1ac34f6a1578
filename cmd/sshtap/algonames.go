package main

import (
	"fmt"
	"slices"
	"strings"
)

// opensshAlgorithms are the names OpenSSH's ssh knows in each algorithm
// list keyword (ssh -Q kex, cipher, mac, HostKeyAlgorithms and
// PubkeyAcceptedAlgorithms of OpenSSH 9.2, plus mlkem768x25519-sha256 from
// 9.9). A configuration written for ssh may name one that sshtap does not
// implement, as distributions' crypto policies do (Red Hat lists the sk-*
// and certificate names): such a name is left out of the list with a note
// under -v, since not offering an algorithm never weakens a connection. A
// name no version of ssh knows stays an error.
var opensshAlgorithms = map[string][]string{
	"kexalgorithms": {
		"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256",
		"diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha1",
		"diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
		"curve25519-sha256", "curve25519-sha256@libssh.org", "sntrup761x25519-sha512",
		"sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256",
	},
	"ciphers": {
		"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr",
		"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
	},
	"macs": {
		"hmac-sha1", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha2-512", "hmac-md5", "hmac-md5-96",
		"umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com",
		"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-md5-etm@openssh.com",
		"hmac-md5-96-etm@openssh.com", "umac-64-etm@openssh.com", "umac-128-etm@openssh.com",
	},
	"hostkeyalgorithms":        opensshKeyAlgorithms,
	"pubkeyacceptedalgorithms": opensshKeyAlgorithms,
	"casignaturealgorithms":    opensshKeyAlgorithms,
}

var opensshKeyAlgorithms = []string{
	"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com",
	"sk-ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
	"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521",
	"ecdsa-sha2-nistp521-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-dss", "ssh-dss-cert-v01@openssh.com", "ssh-rsa", "ssh-rsa-cert-v01@openssh.com",
	"rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com",
}

// withoutUnimplemented removes from a plain algorithm list spec (one that
// replaces the defaults, as crypto policies write them) the names ssh knows
// for kw that are not in supported, and returns what is left with one note
// per name removed. A list with a modifier is returned as it is: "+name"
// and "^name" ask for that very algorithm, so kex.ExpandAlgorithms refuses
// it by name, and "-name" removes nothing that was there. Patterns and
// names nobody knows are kept, for kex.ExpandAlgorithms to expand or
// refuse. A list whose every name was removed comes back empty, which the
// caller reports.
func withoutUnimplemented(kw, spec string, supported []string) (string, []string) {
	spec = strings.TrimSpace(spec)
	known := opensshAlgorithms[kw]
	if spec == "" || known == nil {
		return spec, nil
	}
	if strings.ContainsRune("+-^", rune(spec[0])) {
		return spec, nil
	}
	var kept, notes []string
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if slices.Contains(known, name) && !slices.Contains(supported, name) {
			notes = append(notes, kw+": "+name+" is not implemented by sshtap; left out of the list")
			continue
		}
		kept = append(kept, name)
	}
	return strings.Join(kept, ","), notes
}

// foldCertAlgorithms replaces each certificate algorithm name in a
// PubkeyAcceptedAlgorithms spec by its key's signature algorithm
// (rsa-sha2-512-cert-v01@openssh.com by rsa-sha2-512), once. The SHA-1
// ssh-rsa-cert-v01@openssh.com is dropped instead: folded, it would let
// plain RSA keys sign with SHA-1, which the list did not ask for.
func foldCertAlgorithms(spec string) string {
	spec = strings.TrimSpace(spec)
	mod := ""
	if spec != "" && strings.ContainsRune("+-^", rune(spec[0])) {
		mod, spec = spec[:1], spec[1:]
	}
	var out []string
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if base, ok := strings.CutSuffix(name, "-cert-v01@openssh.com"); ok && !strings.ContainsAny(name, "*?") {
			if base == "ssh-rsa" {
				continue
			}
			name = base
			if strings.HasPrefix(base, "sk-") {
				name = base + "@openssh.com"
			}
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return mod + strings.Join(out, ",")
}

// implementedSpec is withoutUnimplemented for keyword kw, keeping its notes
// for -v; a list left with nothing is an error naming what was asked.
func (s *settings) implementedSpec(kw, spec string, supported []string) (string, error) {
	out, notes := withoutUnimplemented(kw, spec, supported)
	s.configNotes = append(s.configNotes, notes...)
	if len(notes) > 0 && out == "" {
		return "", fmt.Errorf("%s: sshtap implements none of %s", kw, strings.TrimSpace(spec))
	}
	return out, nil
}
