package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
)

// aes*-ctr (RFC 4344 §4): "the IV is ... the initial value of the counter
// X", a 128-bit big-endian integer incremented once per block; the keystream
// continues across packets for the life of the keys. crypto/cipher's CTR
// stream keeps exactly that state, so one stream per direction is created
// with the keys and never reset.

const aesBlock = aes.BlockSize

func newCTRStream(key, iv []byte) (stdcipher.Stream, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return stdcipher.NewCTR(b, iv), nil
}

func newCTRSealer(key, iv []byte, mi macInfo, macKey []byte) (*macSealer, error) {
	st, err := newCTRStream(key, iv)
	if err != nil {
		return nil, err
	}
	return newMACSealer(st.XORKeyStream, aesBlock, mi, macKey)
}

// newCTROpener is the receiving side of newCTRSealer; the keystream never
// misaligns.
func newCTROpener(key, iv []byte, mi macInfo, macKey []byte) (*macOpener, error) {
	st, err := newCTRStream(key, iv)
	if err != nil {
		return nil, err
	}
	decrypt := func(dst, src []byte) bool {
		st.XORKeyStream(dst, src)
		return true
	}
	return newMACOpener(decrypt, aesBlock, false, mi, macKey)
}
