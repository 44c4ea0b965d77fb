module github.com/libllavanext/llavanext-go

go 1.21
