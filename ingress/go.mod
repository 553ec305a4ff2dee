module github.com/orderpipe/pipeline/ingress

go 1.26.0

replace (
	github.com/orderpipe/pipeline/plumbing => ../plumbing
	github.com/orderpipe/pipeline/schemas => ../schemas
)
