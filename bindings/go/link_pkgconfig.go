//go:build !llavanext_nopkgconfig

package llavanext

// #cgo pkg-config: llavanext
import "C"
