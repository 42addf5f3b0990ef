module github.com/0xef53/go-qmp/v2

go 1.22
