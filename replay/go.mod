module github.com/orderpipe/pipeline/replay

go 1.26.0

require (
	github.com/orderpipe/pipeline/plumbing v0.0.0
	github.com/orderpipe/pipeline/schemas v0.0.0
	github.com/segmentio/kafka-go v0.4.51
)

require (
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/pierrec/lz4/v4 v4.1.15 // indirect
)

replace (
	github.com/orderpipe/pipeline/plumbing => ../plumbing
	github.com/orderpipe/pipeline/schemas => ../schemas
)
