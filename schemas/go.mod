module github.com/orderpipe/pipeline/schemas

go 1.26
