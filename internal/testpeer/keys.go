package testpeer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KeyType names a key type and size that ssh-keygen can generate.
type KeyType string

// The key types used by the harness.
const (
	KeyEd25519  KeyType = "ed25519"
	KeyECDSA256 KeyType = "ecdsa-256"
	KeyECDSA384 KeyType = "ecdsa-384"
	KeyECDSA521 KeyType = "ecdsa-521"
	KeyRSA3072  KeyType = "rsa-3072"
)

// AllKeyTypes returns every [KeyType], Ed25519 first.
func AllKeyTypes() []KeyType {
	return []KeyType{KeyEd25519, KeyECDSA256, KeyECDSA384, KeyECDSA521, KeyRSA3072}
}

// keygenArgs returns the ssh-keygen -t/-b arguments for k.
func (k KeyType) keygenArgs() ([]string, error) {
	switch k {
	case KeyEd25519:
		return []string{"-t", "ed25519"}, nil
	case KeyECDSA256:
		return []string{"-t", "ecdsa", "-b", "256"}, nil
	case KeyECDSA384:
		return []string{"-t", "ecdsa", "-b", "384"}, nil
	case KeyECDSA521:
		return []string{"-t", "ecdsa", "-b", "521"}, nil
	case KeyRSA3072:
		return []string{"-t", "rsa", "-b", "3072"}, nil
	}
	return nil, fmt.Errorf("unknown key type %q", string(k))
}

// Key is a generated key pair with its files under a t.TempDir().
type Key struct {
	Type KeyType
	// Path is the private key in OpenSSH format (mode 0600); usable as an
	// sshd HostKey or an ssh -i identity.
	Path string
	// PublicPath is Path + ".pub" (authorized_keys format).
	PublicPath string
	// Private is the content of Path.
	Private []byte
	// Signer and PublicKey are the key as golang.org/x/crypto/ssh values.
	Signer    ssh.Signer
	PublicKey ssh.PublicKey
	// AuthorizedKey is one authorized_keys line without newline:
	// "ssh-ed25519 AAAA... sshtap-testpeer-ed25519".
	AuthorizedKey string

	mu           sync.Mutex
	dropbearPath string
}

// NewKey generates a fresh key of type typ with ssh-keygen and writes it
// under t.TempDir(). Use it for client keys: every call returns a key that no
// other test has seen.
func NewKey(t testing.TB, typ KeyType) *Key {
	t.Helper()
	priv, err := keygen(t, typ)
	if err != nil {
		t.Fatalf("testpeer: generate %s key: %v", typ, err)
	}
	return writeKey(t, typ, priv)
}

// NewKeys returns one fresh key of each of types ([AllKeyTypes] if none).
func NewKeys(t testing.TB, types ...KeyType) []*Key {
	t.Helper()
	if len(types) == 0 {
		types = AllKeyTypes()
	}
	keys := make([]*Key, len(types))
	for i, typ := range types {
		keys[i] = NewKey(t, typ)
	}
	return keys
}

var hostKeyCache struct {
	sync.Mutex
	priv map[KeyType][]byte
}

// HostKeys returns one key of each of types ([AllKeyTypes] if none), written
// under t.TempDir(). The key material is generated once per test binary and
// shared, because RSA generation is slow and a host key's identity rarely
// matters; use [NewKey] when a test needs a host key nobody else has.
func HostKeys(t testing.TB, types ...KeyType) []*Key {
	t.Helper()
	if len(types) == 0 {
		types = AllKeyTypes()
	}
	keys := make([]*Key, len(types))
	for i, typ := range types {
		hostKeyCache.Lock()
		priv, ok := hostKeyCache.priv[typ]
		if !ok {
			var err error
			priv, err = keygen(t, typ)
			if err != nil {
				hostKeyCache.Unlock()
				t.Fatalf("testpeer: generate %s host key: %v", typ, err)
			}
			if hostKeyCache.priv == nil {
				hostKeyCache.priv = make(map[KeyType][]byte)
			}
			hostKeyCache.priv[typ] = priv
		}
		hostKeyCache.Unlock()
		keys[i] = writeKey(t, typ, priv)
	}
	return keys
}

// keygen runs ssh-keygen in a scratch directory and returns the private key
// file's content.
func keygen(t testing.TB, typ KeyType) ([]byte, error) {
	t.Helper()
	args, err := typ.keygenArgs()
	if err != nil {
		return nil, err
	}
	bin := Binary(t, "ssh-keygen")
	dir, err := os.MkdirTemp("", "sshtap-keygen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "key")
	args = append(args, "-q", "-N", "", "-C", "sshtap-testpeer-"+string(typ), "-f", file)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ssh-keygen %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return os.ReadFile(file)
}

// writeKey parses priv and writes it (and its .pub) to a new directory
// under t.TempDir().
func writeKey(t testing.TB, typ KeyType, priv []byte) *Key {
	t.Helper()
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("testpeer: parse generated %s key: %v", typ, err)
	}
	dir := t.TempDir()
	k := &Key{
		Type:       typ,
		Path:       filepath.Join(dir, "id_"+strings.ReplaceAll(string(typ), "-", "_")),
		Private:    priv,
		Signer:     signer,
		PublicKey:  signer.PublicKey(),
		PublicPath: "",
	}
	k.PublicPath = k.Path + ".pub"
	k.AuthorizedKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey))) + " sshtap-testpeer-" + string(typ)
	if err := os.WriteFile(k.Path, priv, 0o600); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	if err := os.WriteFile(k.PublicPath, []byte(k.AuthorizedKey+"\n"), 0o644); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return k
}

// DropbearPath returns the key converted to dropbear's format with
// dropbearconvert (done once per Key), for dropbear -r and dbclient -i.
func (k *Key) DropbearPath(t testing.TB) string {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dropbearPath != "" {
		return k.dropbearPath
	}
	bin := Binary(t, "dropbearconvert")
	out := k.Path + ".dropbear"
	b, err := exec.Command(bin, "openssh", "dropbear", k.Path, out).CombinedOutput()
	if err != nil {
		t.Fatalf("testpeer: dropbearconvert %s: %v: %s", k.Path, err, b)
	}
	k.dropbearPath = out
	return out
}

// KnownHostsLine returns the known_hosts line for this key as a host key of
// addr ("127.0.0.1:PORT" gives "[127.0.0.1]:PORT ssh-ed25519 AAAA...").
func (k *Key) KnownHostsLine(addr string) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, k.PublicKey)
}

// Is reports whether pub is this key's public key.
func (k *Key) Is(pub ssh.PublicKey) bool {
	return pub != nil && bytes.Equal(pub.Marshal(), k.PublicKey.Marshal())
}

// writeKnownHosts writes a known_hosts file for keys at addr and returns its path.
func writeKnownHosts(t testing.TB, addr string, keys []*Key) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.KnownHostsLine(addr))
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return p
}

// HostCert is an OpenSSH host certificate made by [SignHostKey].
type HostCert struct {
	// Path is the certificate file (ssh-keygen's KEY-cert.pub), usable as
	// sshd's HostCertificate or sshtap serve's --host-cert.
	Path string
	Cert *ssh.Certificate
}

// SignHostKey certifies host's public key with ca as
//
//	ssh-keygen -s CA -h -I ID [-n PRINCIPALS] [-V VALIDITY] host.pub
//
// does ("" leaves -n or -V out: no principals, valid forever), in a new
// directory under t.TempDir(), so one key can have several certificates.
func SignHostKey(t testing.TB, ca, host *Key, id, principals, validity string) *HostCert {
	t.Helper()
	dir := t.TempDir()
	pub := filepath.Join(dir, "host.pub")
	if err := os.WriteFile(pub, []byte(host.AuthorizedKey+"\n"), 0o644); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	args := []string{"-q", "-s", ca.Path, "-h", "-I", id}
	if principals != "" {
		args = append(args, "-n", principals)
	}
	if validity != "" {
		args = append(args, "-V", validity)
	}
	args = append(args, pub)
	if out, err := exec.Command(Binary(t, "ssh-keygen"), args...).CombinedOutput(); err != nil {
		t.Fatalf("testpeer: ssh-keygen %s: %v: %s", strings.Join(args, " "), err, out)
	}
	path := filepath.Join(dir, "host-cert.pub")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatalf("testpeer: parse %s: %v", path, err)
	}
	cert, ok := pk.(*ssh.Certificate)
	if !ok {
		t.Fatalf("testpeer: %s holds a %s, not a certificate", path, pk.Type())
	}
	return &HostCert{Path: path, Cert: cert}
}

// Signer is the host key's signer presenting the certificate
// (ssh.NewCertSigner), for a library Server's HostKeys.
func (c *HostCert) Signer(t testing.TB, host *Key) ssh.Signer {
	t.Helper()
	s, err := ssh.NewCertSigner(c.Cert, host.Signer)
	if err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return s
}

// CertAuthorityLine returns the known_hosts line trusting this key as a
// host certificate authority for the hosts matching pattern
// ("@cert-authority PATTERN ssh-ed25519 AAAA...").
func (k *Key) CertAuthorityLine(pattern string) string {
	return "@cert-authority " + pattern + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey)))
}
