package sshtap

import (
	"net"

	"golang.org/x/crypto/ssh"
)

// ConnMetadata describes a connection to the server's auth callbacks.
// *Conn implements it.
type ConnMetadata interface {
	User() string
	SessionID() []byte
	ClientVersion() string
	ServerVersion() string
	RemoteAddr() net.Addr
	LocalAddr() net.Addr
}

// Permissions are what a server auth callback grants; the connection layer
// and the application read them back with Conn.Permissions.
type Permissions struct {
	CriticalOptions map[string]string
	Extensions      map[string]string
	// ExtraData carries what the auth callback wants the application to
	// see later (Conn.Permissions); sshtap neither reads nor sends it.
	ExtraData map[any]any
}

// KeyboardInteractiveChallenge asks the client questions (RFC 4256); echos
// says which answers may be displayed.
type KeyboardInteractiveChallenge func(name, instruction string, questions []string, echos []bool) ([]string, error)

// ServerAuthCallbacks are the auth callbacks of one stage of a multi-step
// authentication (see PartialSuccessError); a nil callback disables its
// method for that stage.
type ServerAuthCallbacks struct {
	PasswordCallback            func(meta ConnMetadata, password []byte) (*Permissions, error)
	PublicKeyCallback           func(meta ConnMetadata, key ssh.PublicKey) (*Permissions, error)
	KeyboardInteractiveCallback func(meta ConnMetadata, challenge KeyboardInteractiveChallenge) (*Permissions, error)
}

// PartialSuccessError, returned by a server auth callback, accepts the
// method but requires more: the client gets SSH_MSG_USERAUTH_FAILURE with
// partial success TRUE (RFC 4252 §5.1) and the methods of Next, whose
// callbacks decide the following requests.
type PartialSuccessError struct {
	Next ServerAuthCallbacks
	// Permissions, when set, are checked as a full success's are (a
	// certificate's source-address critical option); the permissions the
	// connection ends up with are the final step's.
	Permissions *Permissions
}

func (e *PartialSuccessError) Error() string {
	return "sshtap: authentication partially succeeded; more methods are required"
}
