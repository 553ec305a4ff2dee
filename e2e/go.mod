module github.com/orderpipe/pipeline/e2e

go 1.26.0

replace (
	github.com/orderpipe/pipeline/plumbing => ../plumbing
	github.com/orderpipe/pipeline/schemas => ../schemas
)
