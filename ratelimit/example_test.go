package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/rauta/rauta/ratelimit"
)

// stepClock is a clock that moves only when told to.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

func ExampleBucket() {
	clk := &stepClock{t: time.Unix(0, 0)}
	// Two requests per second, bursts of up to three.
	b, err := ratelimit.NewBucket(ratelimit.BucketOptions{Rate: 2, Burst: 3, Now: clk.Now})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 4 {
		ok, retryAfter := b.Take()
		fmt.Println(i, ok, retryAfter)
	}
	clk.t = clk.t.Add(time.Second)
	fmt.Println("after 1s:", b.Tokens(), "tokens")
	// Output:
	// 0 true 0s
	// 1 true 0s
	// 2 true 0s
	// 3 false 500ms
	// after 1s: 2 tokens
}

func ExampleKeyed() {
	clk := &stepClock{t: time.Unix(0, 0)}
	limit, err := ratelimit.NewKeyed(ratelimit.KeyedOptions{
		Rate:    1, // per client per second
		Burst:   2,
		MaxKeys: 10000,
		Now:     clk.Now,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, client := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.7"} {
		if ok, retryAfter := limit.Take(client); ok {
			fmt.Println(client, "allowed")
		} else {
			fmt.Printf("%s refused, Retry-After: %.0f\n", client, retryAfter.Seconds())
		}
	}
	// Output:
	// 192.0.2.1 allowed
	// 192.0.2.1 allowed
	// 192.0.2.1 refused, Retry-After: 1
	// 198.51.100.7 allowed
}

func ExampleBucket_SetLimit() {
	clk := &stepClock{t: time.Unix(0, 0)}
	// A limit of 30 per second shared by the replicas of a service.
	b, err := ratelimit.NewBucket(ratelimit.BucketOptions{Rate: 30, Burst: 30, Now: clk.Now})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A third replica joins: this one now admits a third.
	if err := b.SetLimit(10, 10); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Tokens(), "tokens, one every", b.Interval())
	// Output:
	// 10 tokens, one every 100ms
}
