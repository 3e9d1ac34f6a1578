// Package testpeer starts real SSH peers (OpenSSH sshd and ssh, dropbear and
// dbclient) for interop tests. It is test infrastructure: it starts processes,
// listens on loopback ports and writes files, and must only be imported from
// _test.go files.
//
// # Ground rules
//
//   - Everything runs on 127.0.0.1. Ports are picked by listening on
//     127.0.0.1:0 and closing; if the peer then fails to bind (someone else
//     took the port in between) it is restarted on a new port.
//   - Keys, configs and logs live under t.TempDir().
//   - Every process is killed and waited for in t.Cleanup, together with all
//     of its descendants (per-connection sshd/dropbear children and the
//     commands they run), so goleak stays clean and nothing is left running.
//   - Readiness is detected by polling /proc for the peer's listening socket
//     (no probe connection that would show up in the peer's log), with a
//     deadline; there are no sleeps used as synchronisation.
//   - On test failure the peer's log is dumped with t.Log.
//
// # Skipping
//
// [Require] skips a test when a binary is missing, naming the Debian package
// to install. With SSHTAP_INTEROP=1 in the environment (set by .ci/run) a
// missing binary, or not running as root, is a failure instead.
//
// # sshd
//
// sshd must run as root, from its absolute path /usr/sbin/sshd, with an
// absolute -f path and the privilege-separation directory /run/sshd (created
// here when missing). The harness runs "sshd -D -E LOG -f CONF -p PORT": it
// uses -E (log to a file) rather than -e (log to stderr) because with -e and
// LogLevel DEBUG3 the per-session child's debug lines ("debug1: SELinux
// support disabled", "debug1: permanently_set_uid: 0/0") are written into the
// channel's stderr stream and reach the client as extended data.
//
// # dropbear and authorized_keys
//
// dropbear only reads ~/.ssh/authorized_keys of the target user, and has no
// option to point it elsewhere. Mount namespaces (unshare -m with a tmpfs
// over a home directory) need CAP_SYS_ADMIN, which a stock container on a CI
// machine does not have, so this package uses a dedicated system user
// instead: [TestUser] ("sshtaptest", home [TestUserHome] = /var/lib/sshtaptest,
// shell /bin/sh, password field "*" so it is not "locked"). The user and its
// home are created idempotently on first use (useradd, under a lock file; .ci/run
// creates it too). Dropbear instances log in as that user.
//
// Because the home is shared by every test and every test binary (go test
// runs packages in parallel), its authorized_keys is a shared file: each
// dropbear instance adds its keys as a block
//
//	# sshtap-testpeer begin pid=PID id=ID
//	ssh-ed25519 AAAA... comment
//	# sshtap-testpeer end pid=PID id=ID
//
// under an flock, by atomic rename, and removes the block in t.Cleanup. Blocks
// of processes that no longer exist are pruned on every update. Since client
// keys are freshly generated for each test, another test's key being
// authorised at the same time is harmless: a key that a test did not
// authorise is never in the file.
//
// dbclient writes ~/.ssh/known_hosts of $HOME, so [DBClient] runs it with
// HOME set to a temporary directory.
//
// # Dropbear 2022.83 quirks
//
// No GCM ciphers, no -etm MACs, no rsa-sha2-512, at most four -r host keys
// ("Too many hostkeys"), packets up to about 35,000 bytes, a 24 KiB default
// window. It always offers rsa-sha2-256 and ssh-rsa host key algorithms,
// even when it has no RSA host key, and then dies on an assertion
// ("Failed assertion (rsa.c:164): `key != NULL'", no DISCONNECT) when a
// client picks one, which is what "aborts when a client offers RSA host keys
// first" means in practice; StartDropbear therefore loads an RSA key by
// default. Password logins are disabled (-s) by default. "dropbear -i" does
// not work over pipes (it exits silently), so there is no dropbear
// counterpart of [SSHDInetd]. Its KEXINIT carries the
// pseudo-algorithms kexguess2@matt.ucc.asn.au and (Debian's Terrapin fix)
// kex-strict-s-v00@openssh.com; its client always sends a guessed first kex
// packet.
package testpeer
