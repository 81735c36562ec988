module github.com/kclgo/kcl/cmd/kcl

go 1.26.0

replace github.com/kclgo/kcl => ../..
