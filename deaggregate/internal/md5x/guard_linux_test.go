package md5x

import (
	"syscall"
	"testing"
)

// TestSumReadsNothingOutsideItsMessages puts the messages on a page between
// two pages that may not be read, each message starting at the first byte
// or ending at the last, so that any read outside a message faults.
func TestSumReadsNothingOutsideItsMessages(t *testing.T) {
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	data := mem[page : 2*page : 2*page]
	copy(data, randomBytes(4, page))
	for _, guard := range [][]byte{mem[:page], mem[2*page:]} {
		if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
			t.Skipf("mprotect: %v", err)
		}
	}
	forEachPath(t, func(t *testing.T) {
		for l := 0; l <= 300; l++ {
			var m8 [8][]byte
			var m16 [16][]byte
			for i := range m16 {
				if i%2 == 0 {
					m16[i] = data[page-l-i%3:]
				} else {
					m16[i] = data[: l+i%3 : l+i%3]
				}
			}
			copy(m8[:], m16[:])
			check8(t, &m8, 8)
			check16(t, &m16, 16)
		}
	})
}
