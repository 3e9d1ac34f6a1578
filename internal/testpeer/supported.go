package testpeer

import (
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// DropbearVersion is the dropbear release the fixed algorithm lists in
// [Supported] were measured against (Debian 12's dropbear-bin).
const DropbearVersion = "2022.83"

// Dropbear 2022.83 (Debian 12 build) algorithm lists, in its preference
// order, measured from the KEXINIT and EXT_INFO it sends (dropbear has no
// -Q). The pseudo-algorithms kexguess2@matt.ucc.asn.au,
// kex-strict-[cs]-v00@openssh.com and ext-info-c are left out, like
// ssh -Q leaves them out.
var dropbearLists = map[string]map[string][]string{
	"dropbear": {
		"kex": {"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp521",
			"ecdh-sha2-nistp384", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256",
			"diffie-hellman-group14-sha1"},
		"cipher": {"chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"},
		"mac":    {"hmac-sha1", "hmac-sha2-256"},
		// Host key algorithms it can serve (given a key of that type).
		"key": {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
			"ecdsa-sha2-nistp521", "rsa-sha2-256", "ssh-rsa", "ssh-dss"},
		// Signature algorithms accepted for publickey auth (server-sig-algs).
		"key-sig": {"ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256",
			"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com",
			"rsa-sha2-256", "ssh-rsa", "ssh-dss"},
		"compression": {"zlib@openssh.com", "none"},
	},
	"dbclient": {
		"kex": {"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp521",
			"ecdh-sha2-nistp384", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256",
			"diffie-hellman-group14-sha1"},
		"cipher": {"chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr"},
		"mac":    {"hmac-sha1", "hmac-sha2-256"},
		// Host key algorithms it accepts, as offered in its KEXINIT.
		"key": {"ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256",
			"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com",
			"rsa-sha2-256", "ssh-rsa", "ssh-dss"},
		"key-sig": {"ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256",
			"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com",
			"rsa-sha2-256", "ssh-rsa", "ssh-dss"},
		"compression": {"zlib@openssh.com", "zlib", "none"},
	},
}

var queryCache struct {
	sync.Mutex
	m               map[string][]string
	dropbearChecked bool
}

// Supported returns the algorithms a peer supports, so interop tests can
// iterate over all of them.
//
//   - "ssh" or "sshd": the output of "ssh -Q QUERY" (QUERY is anything
//     ssh -Q accepts: kex, cipher, mac, key, key-sig, compression,
//     HostKeyAlgorithms, ...). sshd has no -Q; Debian builds both from the
//     same OpenSSH source and packages them in lockstep, so the lists are
//     the same. These are supported algorithms, not the enabled defaults:
//     e.g. diffie-hellman-group1-sha1 or 3des-cbc need an explicit
//     "KexAlgorithms"/"Ciphers" line to be used.
//   - "dropbear" or "dbclient": fixed lists for dropbear 2022.83, for the
//     queries kex, cipher, mac, key (host key algorithms), key-sig (publickey
//     signature algorithms) and compression.
//
// The binary must be installed ([Require] semantics).
func Supported(t testing.TB, binary, query string) []string {
	t.Helper()
	switch binary {
	case "ssh", "sshd":
		bin := Binary(t, "ssh")
		queryCache.Lock()
		defer queryCache.Unlock()
		if l, ok := queryCache.m[query]; ok {
			return slices.Clone(l)
		}
		out, err := exec.Command(bin, "-Q", query).Output()
		if err != nil {
			t.Fatalf("testpeer: ssh -Q %s: %v", query, err)
		}
		l := strings.Fields(string(out))
		if queryCache.m == nil {
			queryCache.m = make(map[string][]string)
		}
		queryCache.m[query] = l
		return slices.Clone(l)
	case "dropbear", "dbclient":
		bin := Binary(t, binary)
		l, ok := dropbearLists[binary][query]
		if !ok {
			t.Fatalf("testpeer: Supported(%s, %q): unknown query (kex, cipher, mac, key, key-sig, compression)", binary, query)
		}
		queryCache.Lock()
		checked := queryCache.dropbearChecked
		queryCache.dropbearChecked = true
		queryCache.Unlock()
		if !checked {
			out, _ := exec.Command(bin, "-V").CombinedOutput()
			if !strings.Contains(string(out), DropbearVersion) {
				t.Logf("testpeer: WARNING: %s -V says %q; the algorithm lists are for dropbear %s",
					binary, strings.TrimSpace(string(out)), DropbearVersion)
			}
		}
		return slices.Clone(l)
	}
	t.Fatalf("testpeer: Supported: unknown binary %q (ssh, sshd, dropbear, dbclient)", binary)
	return nil
}
