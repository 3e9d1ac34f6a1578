package kex

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hostKey is one host key configuration the exchange tests run with.
type hostKey struct {
	name   string
	algo   string // negotiated host key algorithm
	signer ssh.Signer
}

// fixtures are generated once per test binary; RSA generation is slow.
var fixtures = sync.OnceValue(func() []hostKey {
	must := func(s ssh.Signer, err error) ssh.Signer {
		if err != nil {
			panic(err)
		}
		return s
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := must(ssh.NewSignerFromKey(edPriv))
	ec := func(c elliptic.Curve) ssh.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		return must(ssh.NewSignerFromKey(k))
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	rs := must(ssh.NewSignerFromKey(rsaKey))

	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	ca := must(ssh.NewSignerFromKey(caPriv))
	certify := func(s ssh.Signer) ssh.Signer {
		cert := &ssh.Certificate{
			Key:             s.PublicKey(),
			CertType:        ssh.HostCert,
			KeyId:           "host",
			ValidPrincipals: []string{"host.example"},
			ValidBefore:     ssh.CertTimeInfinity,
		}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			panic(err)
		}
		return must(ssh.NewCertSigner(cert, s))
	}
	return []hostKey{
		{"ed25519", HostKeyED25519, ed},
		{"ecdsa256", HostKeyECDSA256, ec(elliptic.P256())},
		{"ecdsa384", HostKeyECDSA384, ec(elliptic.P384())},
		{"ecdsa521", HostKeyECDSA521, ec(elliptic.P521())},
		{"rsa-sha2-256", HostKeyRSASHA256, rs},
		{"rsa-sha2-512", HostKeyRSASHA512, rs},
		{"ed25519-cert", HostKeyED25519Cert, certify(ed)},
		{"rsa-sha2-512-cert", HostKeyRSASHA512Cert, certify(rs)},
	}
})

func fixture(t testing.TB, name string) hostKey {
	t.Helper()
	for _, f := range fixtures() {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no fixture %q", name)
	return hostKey{}
}

// readKV parses a testdata file of "key = value" lines into records separated
// by blank lines; '#' starts a comment line.
func readKV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == "" {
			if len(cur) > 0 {
				recs = append(recs, cur)
				cur = map[string]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(cur) > 0 {
		recs = append(recs, cur)
	}
	return recs
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
