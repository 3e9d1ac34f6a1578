// Package packet implements the SSH binary packet protocol (RFC 4253 §6):
// framing, random padding, sequence numbers, traffic counters for rekey
// limits, and the detection of damaged or forged packets.
//
// Protection itself (encryption and MAC or AEAD) is delegated to the
// [cipher.Sealer] and [cipher.Opener] values installed with
// [Writer.SetSealer] and [Reader.SetOpener]; a nil value means the "none"
// cipher and MAC used before the first NEWKEYS.
//
// # Concurrency
//
// A [Writer] and a [Reader] are each used by one goroutine at a time; they
// are not safe for concurrent use. The two directions are independent, so a
// Writer and a Reader may be used concurrently with each other. In sshtap the
// root package serializes writers with its write mutex and the transport
// goroutine is the only caller of the Reader. Key changes ([Writer.SetSealer],
// [Reader.SetOpener], ResetSeq) must be made by the goroutine that owns that
// direction, between packets.
//
// # Ownership
//
// [Writer.AppendPacket] appends to a slice owned by the caller and keeps no
// reference to it or to the payload after returning.
//
// [Reader.Next] reads from a buffer owned by the caller and never modifies or
// retains it. The payload it returns (and [AuthError.Payload]) lives in the
// Reader's own plaintext buffer: it is valid only until the next call to
// Next, and the caller must copy whatever it keeps longer. The plaintext
// buffer grows as needed, never beyond the Reader's MaxPacket, and is reused,
// so steady-state reading does not allocate.
//
// Nothing in this package starts goroutines or does I/O.
package packet
