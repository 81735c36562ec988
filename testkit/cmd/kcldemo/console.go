package main

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// console prints messages and the progress line. On a terminal the progress
// line is redrawn in place below the messages; otherwise every progress
// line is printed as it comes.
type console struct {
	tty   bool
	width int // terminal columns; progress lines are cut to fit, as a wrapped line cannot be redrawn

	mu   sync.Mutex
	last string // the progress line shown, on a terminal
}

func newConsole() *console {
	ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return &console{}
	}
	return &console{tty: true, width: int(ws.Col)}
}

// printf prints a message on a line of its own.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.last != "" {
		fmt.Print("\r\033[K")
	}
	fmt.Printf(format+"\n", args...)
	if c.tty && c.last != "" {
		fmt.Print(c.last)
	}
}

// progress shows line as the progress line; "" ends the progress display.
func (c *console) progress(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		if line != "" {
			fmt.Println(line)
		}
		return
	}
	if r := []rune(line); len(r) >= c.width {
		line = string(r[:c.width-1])
	}
	fmt.Print("\r\033[K" + line)
	if line == "" && c.last != "" {
		fmt.Print("\r\033[K" + c.last + "\n") // keep the final state on screen
	}
	c.last = line
}
