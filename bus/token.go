package bus

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// HeaderFrameToken carries a frame's token (FrameToken) to the worker, which
// copies it into the frame's Result. Only the frames stream reveals it, so a
// result with the right token comes from someone who received the frame,
// not from a worker that guessed a job, a video and a seq.
const HeaderFrameToken = "Vidpipe-Frame-Token"

// KeyBytes is the size of an ingest attempt's token key.
const KeyBytes = 16

// NewKey returns a fresh random token key, hex-encoded as in Event.Key.
func NewKey() string {
	var k [KeyBytes]byte
	rand.Read(k[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(k[:])
}

// FrameToken is the token of frame seq of job/video under key (Event.Key):
// 16 bytes of HMAC-SHA256, hex. It is "" for a key that is not valid hex.
func FrameToken(key, job, video string, seq int) string {
	k, err := hex.DecodeString(key)
	if err != nil || len(k) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(job))
	m.Write([]byte{0})
	m.Write([]byte(video))
	m.Write([]byte{0})
	m.Write([]byte(strconv.Itoa(seq)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// ValidToken reports whether token is frame seq's under one of keys, in
// constant time per key.
func ValidToken(token string, keys []string, job, video string, seq int) bool {
	for _, k := range keys {
		if want := FrameToken(k, job, video, seq); want != "" && hmac.Equal([]byte(token), []byte(want)) {
			return true
		}
	}
	return false
}

// StartMsgID is the de-duplication id of one ingest attempt's start event:
// the key's first bytes set attempts apart, so a retried video's new key
// reaches the coordinator even inside the duplicate window, while one
// attempt's repeated publish is still dropped.
func StartMsgID(job, video, key string) string {
	id := EventMsgID(job, video, VideoStarted)
	if len(key) >= 16 {
		id += "." + key[:16]
	}
	return id
}
