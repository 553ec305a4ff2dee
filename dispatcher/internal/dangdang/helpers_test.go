package dangdang

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
)

func md5Upper(b []byte) string {
	s := md5.Sum(b)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}
