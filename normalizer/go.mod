module github.com/orderpipe/pipeline/normalizer

go 1.26.0

replace (
	github.com/orderpipe/pipeline/plumbing => ../plumbing
	github.com/orderpipe/pipeline/schemas => ../schemas
)

require github.com/orderpipe/pipeline/schemas v0.0.0-00010101000000-000000000000
