package wire

import "strconv"

// Transport layer generic messages (RFC 4253 §12, RFC 4250 §4.1.2, RFC 8308).
const (
	MsgDisconnect     byte = 1
	MsgIgnore         byte = 2
	MsgUnimplemented  byte = 3
	MsgDebug          byte = 4
	MsgServiceRequest byte = 5
	MsgServiceAccept  byte = 6
	MsgExtInfo        byte = 7 // RFC 8308 §2.3
	MsgNewCompress    byte = 8 // RFC 8308 §3.2
)

// Algorithm negotiation (RFC 4253 §7).
const (
	MsgKexInit byte = 20
	MsgNewKeys byte = 21
)

// Key-exchange method specific messages (30..49). RFC 4251 §7: "30 to 49
// Key exchange method specific (numbers can be reused for different
// authentication methods)", so these numbers overlap.
const (
	MsgKexDHInit  byte = 30 // RFC 4253 §8
	MsgKexDHReply byte = 31 // RFC 4253 §8

	MsgKexECDHInit  byte = 30 // RFC 5656 §7.1; also curve25519, sntrup761 and mlkem768 hybrids
	MsgKexECDHReply byte = 31 // RFC 5656 §7.1

	MsgKexDHGexRequestOld byte = 30 // RFC 4419 §5
	MsgKexDHGexGroup      byte = 31 // RFC 4419 §5
	MsgKexDHGexInit       byte = 32 // RFC 4419 §5
	MsgKexDHGexReply      byte = 33 // RFC 4419 §5
	MsgKexDHGexRequest    byte = 34 // RFC 4419 §5
)

// User authentication (RFC 4252 §6, RFC 4256, RFC 4462). Numbers 60..79
// are method specific and overlap.
const (
	MsgUserAuthRequest byte = 50
	MsgUserAuthFailure byte = 51
	MsgUserAuthSuccess byte = 52
	MsgUserAuthBanner  byte = 53

	MsgUserAuthPKOK            byte = 60 // publickey (RFC 4252 §7)
	MsgUserAuthPubKeyOK        byte = 60 // alias of MsgUserAuthPKOK
	MsgUserAuthPasswdChangeReq byte = 60 // password (RFC 4252 §8)
	MsgUserAuthInfoRequest     byte = 60 // keyboard-interactive (RFC 4256 §5)
	MsgUserAuthInfoResponse    byte = 61 // keyboard-interactive (RFC 4256 §5)

	MsgUserAuthGSSAPIResponse         byte = 60 // RFC 4462 §3
	MsgUserAuthGSSAPIToken            byte = 61
	MsgUserAuthGSSAPIExchangeComplete byte = 63
	MsgUserAuthGSSAPIError            byte = 64
	MsgUserAuthGSSAPIErrTok           byte = 65
	MsgUserAuthGSSAPIMIC              byte = 66
)

// Connection protocol (RFC 4254 §9).
const (
	MsgGlobalRequest  byte = 80
	MsgRequestSuccess byte = 81
	MsgRequestFailure byte = 82

	MsgChannelOpen             byte = 90
	MsgChannelOpenConfirm      byte = 91
	MsgChannelOpenConfirmation byte = 91 // alias of MsgChannelOpenConfirm
	MsgChannelOpenFailure      byte = 92
	MsgChannelWindowAdjust     byte = 93
	MsgChannelData             byte = 94
	MsgChannelExtendedData     byte = 95
	MsgChannelEOF              byte = 96
	MsgChannelClose            byte = 97
	MsgChannelRequest          byte = 98
	MsgChannelSuccess          byte = 99
	MsgChannelFailure          byte = 100
)

// OpenSSH extensions (PROTOCOL §1.9 "ping@openssh.com").
const (
	MsgPing byte = 192
	MsgPong byte = 193
)

// msgNames maps each number to the name of its first-listed meaning; the
// method-specific ranges (30..49, 60..79) name the RFC 4253 / RFC 4252
// meaning or list the alternatives.
var msgNames = [256]string{
	MsgDisconnect:     "SSH_MSG_DISCONNECT",
	MsgIgnore:         "SSH_MSG_IGNORE",
	MsgUnimplemented:  "SSH_MSG_UNIMPLEMENTED",
	MsgDebug:          "SSH_MSG_DEBUG",
	MsgServiceRequest: "SSH_MSG_SERVICE_REQUEST",
	MsgServiceAccept:  "SSH_MSG_SERVICE_ACCEPT",
	MsgExtInfo:        "SSH_MSG_EXT_INFO",
	MsgNewCompress:    "SSH_MSG_NEWCOMPRESS",
	MsgKexInit:        "SSH_MSG_KEXINIT",
	MsgNewKeys:        "SSH_MSG_NEWKEYS",

	30: "SSH_MSG_KEXDH_INIT",  // also KEX_ECDH_INIT, KEX_DH_GEX_REQUEST_OLD
	31: "SSH_MSG_KEXDH_REPLY", // also KEX_ECDH_REPLY, KEX_DH_GEX_GROUP
	32: "SSH_MSG_KEX_DH_GEX_INIT",
	33: "SSH_MSG_KEX_DH_GEX_REPLY",
	34: "SSH_MSG_KEX_DH_GEX_REQUEST",

	MsgUserAuthRequest: "SSH_MSG_USERAUTH_REQUEST",
	MsgUserAuthFailure: "SSH_MSG_USERAUTH_FAILURE",
	MsgUserAuthSuccess: "SSH_MSG_USERAUTH_SUCCESS",
	MsgUserAuthBanner:  "SSH_MSG_USERAUTH_BANNER",
	60:                 "SSH_MSG_USERAUTH_PK_OK",         // also PASSWD_CHANGEREQ, INFO_REQUEST, GSSAPI_RESPONSE
	61:                 "SSH_MSG_USERAUTH_INFO_RESPONSE", // also GSSAPI_TOKEN
	63:                 "SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE",
	64:                 "SSH_MSG_USERAUTH_GSSAPI_ERROR",
	65:                 "SSH_MSG_USERAUTH_GSSAPI_ERRTOK",
	66:                 "SSH_MSG_USERAUTH_GSSAPI_MIC",

	MsgGlobalRequest:       "SSH_MSG_GLOBAL_REQUEST",
	MsgRequestSuccess:      "SSH_MSG_REQUEST_SUCCESS",
	MsgRequestFailure:      "SSH_MSG_REQUEST_FAILURE",
	MsgChannelOpen:         "SSH_MSG_CHANNEL_OPEN",
	MsgChannelOpenConfirm:  "SSH_MSG_CHANNEL_OPEN_CONFIRMATION",
	MsgChannelOpenFailure:  "SSH_MSG_CHANNEL_OPEN_FAILURE",
	MsgChannelWindowAdjust: "SSH_MSG_CHANNEL_WINDOW_ADJUST",
	MsgChannelData:         "SSH_MSG_CHANNEL_DATA",
	MsgChannelExtendedData: "SSH_MSG_CHANNEL_EXTENDED_DATA",
	MsgChannelEOF:          "SSH_MSG_CHANNEL_EOF",
	MsgChannelClose:        "SSH_MSG_CHANNEL_CLOSE",
	MsgChannelRequest:      "SSH_MSG_CHANNEL_REQUEST",
	MsgChannelSuccess:      "SSH_MSG_CHANNEL_SUCCESS",
	MsgChannelFailure:      "SSH_MSG_CHANNEL_FAILURE",

	MsgPing: "SSH_MSG_PING",
	MsgPong: "SSH_MSG_PONG",
}

// MsgName returns the RFC name of message number t ("SSH_MSG_KEXINIT"), or
// "unknown(t)" for unassigned numbers. Method-specific numbers (30..49,
// 60..79) get the name of their RFC 4253 / RFC 4252 meaning (30 is
// "SSH_MSG_KEXDH_INIT" whatever the negotiated method).
func MsgName(t byte) string {
	if s := msgNames[t]; s != "" {
		return s
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}
