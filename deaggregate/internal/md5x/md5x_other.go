//go:build !amd64 || purego

package md5x

// useSIMD is false: there is no SIMD code for this architecture. Tests set
// it on amd64 to cover both paths.
var useSIMD = false

func sum8(out *[8][Size]byte, msgs *[8][]byte, n int) {
	sumGeneric(out[:n], msgs[:n])
}

func sum16(out *[16][Size]byte, msgs *[16][]byte, n int) {
	sumGeneric(out[:n], msgs[:n])
}
