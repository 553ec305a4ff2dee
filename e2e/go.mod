module github.com/orderpipe/pipeline/e2e

go 1.26.0

replace (
	github.com/orderpipe/pipeline/plumbing => ../plumbing
	github.com/orderpipe/pipeline/schemas => ../schemas
)

require (
	github.com/labstack/echo/v4 v4.16.0
	github.com/orderpipe/pipeline/plumbing v0.0.0
)

require (
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/labstack/gommon v0.5.0 // indirect
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.22 // indirect
	github.com/pierrec/lz4/v4 v4.1.15 // indirect
	github.com/segmentio/kafka-go v0.4.51 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	golang.org/x/crypto v0.53.0 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.40.0 // indirect
)
