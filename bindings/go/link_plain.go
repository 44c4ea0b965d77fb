//go:build llavanext_nopkgconfig

package llavanext

// Without pkg-config: the header and library paths come from CGO_CFLAGS / CGO_LDFLAGS, e.g.
// CGO_CFLAGS=-I$PREFIX/include CGO_LDFLAGS="-L$LLAVANEXT_LIBRARY -Wl,-rpath,$LLAVANEXT_LIBRARY".

// #cgo LDFLAGS: -lllavanext
import "C"
