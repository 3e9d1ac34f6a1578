package kex

import (
	"strings"
	"testing"

	"sshtap/internal/wire"
)

// rawKexInit encodes a KEXINIT whose ten name-lists are the given strings
// verbatim (stray commas included), as a peer's bytes would arrive.
func rawKexInit(lists [10]string, follows bool) []byte {
	b := append([]byte{wire.MsgKexInit}, make([]byte, 16)...)
	for _, l := range lists {
		b = wire.AppendString(b, l)
	}
	b = wire.AppendBool(b, follows)
	return wire.AppendUint32(b, 0)
}

// TestNegotiateStrayCommas: a peer KEXINIT whose every list has a trailing,
// a leading or a doubled comma (libssh 0.10 clients end their lists with
// one) decodes and negotiates, in either role, to exactly what the same
// lists without the stray commas give.
func TestNegotiateStrayCommas(t *testing.T) {
	// The peer's preferences, in its order; the first entries are ones
	// sshtap does not offer, so a choice of the wrong entry shows.
	peer := [10][]string{
		{"sntrup761x25519-sha512@openssh.com", DHGroup14SHA256, Curve25519SHA256, ExtInfoC, StrictC},
		{"ssh-dss", HostKeyRSASHA256, HostKeyED25519},
		{"3des-cbc", "aes256-ctr", "aes128-ctr"},
		{"aes128-ctr", "aes256-ctr"},
		{"hmac-md5", "hmac-sha2-512", "hmac-sha2-256"},
		{"hmac-sha2-256"},
		{"zlib", "none"},
		{"none"},
		nil,
		{"en"},
	}
	ours := &Proposal{
		Kex:     []string{Curve25519SHA256, DHGroup14SHA256},
		HostKey: []string{HostKeyED25519, HostKeyRSASHA256},
		Ciphers: []string{"aes128-ctr", "aes256-ctr"},
		MACs:    []string{"hmac-sha2-256", "hmac-sha2-512"},
	}
	shapes := []struct {
		name string
		edit func(names []string) string
	}{
		{"none", func(n []string) string { return strings.Join(n, ",") }},
		{"trailing", func(n []string) string { return strings.Join(n, ",") + "," }},
		{"leading", func(n []string) string { return "," + strings.Join(n, ",") }},
		{"doubled", func(n []string) string { return strings.Join(n, ",,") }},
		{"all three", func(n []string) string { return ",," + strings.Join(n, ",,") + "," }},
	}
	negotiate := func(t *testing.T, raw []byte, peerRole Role) *Algorithms {
		t.Helper()
		var theirs wire.KexInit
		if err := theirs.Unmarshal(raw); err != nil {
			t.Fatalf("peer KEXINIT rejected: %v", err)
		}
		ourRole := Server
		if peerRole == Server {
			ourRole = Client
		}
		mine, err := ours.KexInit(ourRole, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, s := &theirs, mine
		if peerRole == Server {
			c, s = s, c
		}
		a, err := Negotiate(c, s)
		if err != nil {
			t.Fatalf("Negotiate: %v", err)
		}
		if GuessWrong(c, s) {
			t.Error("GuessWrong with no guess")
		}
		return a
	}
	for _, role := range []Role{Client, Server} {
		var want *Algorithms
		for _, shape := range shapes {
			t.Run("peer "+role.String()+"/"+shape.name, func(t *testing.T) {
				var lists [10]string
				for i, l := range peer {
					lists[i] = shape.edit(l)
				}
				got := negotiate(t, rawKexInit(lists, false), role)
				if want == nil {
					want = got // shape "none": the well-formed lists
					return
				}
				if *got != *want {
					t.Errorf("got  %+v\nwant %+v", *got, *want)
				}
			})
		}
		if want == nil {
			continue
		}
		// The peer's order wins as client, ours as server (RFC 4253 §7.1).
		exp := Algorithms{Kex: DHGroup14SHA256, HostKey: HostKeyRSASHA256, CipherCS: "aes256-ctr", CipherSC: "aes128-ctr",
			MACCS: "hmac-sha2-512", MACSC: "hmac-sha2-256", CompressionCS: "none", CompressionSC: "none"}
		if role == Server {
			exp = Algorithms{Kex: Curve25519SHA256, HostKey: HostKeyED25519, CipherCS: "aes128-ctr", CipherSC: "aes128-ctr",
				MACCS: "hmac-sha2-256", MACSC: "hmac-sha2-256", CompressionCS: "none", CompressionSC: "none"}
		}
		if *want != exp {
			t.Errorf("%v peer: negotiated %+v, want %+v", role, *want, exp)
		}
	}
}

// TestGuessWrongStrayCommas: a leading comma does not make a peer's
// first_kex_packet_follows guess wrong: the first name is its first
// non-empty one.
func TestGuessWrongStrayCommas(t *testing.T) {
	lists := [10]string{"," + Curve25519SHA256 + ",", ",," + HostKeyED25519, "aes128-ctr,", "aes128-ctr,", "hmac-sha2-256,", "hmac-sha2-256,", "none,", "none,", ",", ""}
	var c wire.KexInit
	if err := c.Unmarshal(rawKexInit(lists, true)); err != nil {
		t.Fatal(err)
	}
	s, err := (&Proposal{Kex: []string{Curve25519SHA256}, HostKey: []string{HostKeyED25519}, Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"}}).KexInit(Server, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if GuessWrong(&c, s) {
		t.Errorf("guess over %q / %q judged wrong", c.KexAlgos, c.HostKeyAlgos)
	}
}
