package breaker_test

import (
	"fmt"
	"time"

	"github.com/rauta/rauta/breaker"
)

// stepClock is a clock that moves only when told to.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

func Example() {
	clk := &stepClock{t: time.Unix(0, 0)}
	b, err := breaker.New(breaker.Options{
		MinRequests: 4,
		OpenTimeout: 10 * time.Second,
		Now:         clk.Now,
		OnStateChange: func(from, to breaker.State) {
			fmt.Printf("  %v -> %v\n", from, to)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	request := func(backendOK bool) {
		t, ok := b.Allow()
		if !ok {
			fmt.Println("refused")
			return
		}
		fmt.Println("sent, ok:", backendOK)
		b.Done(t, backendOK)
	}

	request(true)
	request(false)
	request(false) // 2 of 3 failed, but fewer than MinRequests
	request(false) // 3 of 4: opens
	request(true)
	clk.t = clk.t.Add(10 * time.Second)
	request(true) // the probe
	fmt.Println(b.State())
	// Output:
	// sent, ok: true
	// sent, ok: false
	// sent, ok: false
	// sent, ok: false
	//   closed -> open
	// refused
	//   open -> half-open
	// sent, ok: true
	//   half-open -> closed
	// closed
}

func ExampleState() {
	fmt.Println(breaker.Closed, breaker.Open, breaker.HalfOpen)
	// Output: closed open half-open
}
