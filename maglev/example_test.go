package maglev_test

import (
	"fmt"

	"github.com/rauta/rauta/maglev"
)

func Example() {
	backends := []maglev.Backend{
		{Name: "10.0.0.3:8080", Weight: 2},
		{Name: "10.0.0.1:8080", Weight: 1},
		{Name: "10.0.0.2:8080", Weight: 1},
	}
	t, err := maglev.Build(backends, maglev.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, b := range t.Backends() {
		fmt.Printf("%s weight %d owns %d of %d entries\n", b.Name, b.Weight, t.Entries(i), t.Size())
	}

	// The same client address always picks the same backend, in every
	// process that builds the table from the same backends.
	for _, client := range []string{"192.0.2.10", "192.0.2.11", "192.0.2.10"} {
		i := t.Pick(maglev.HashString(client))
		fmt.Println(client, "->", t.Backend(i).Name)
	}
	// Output:
	// 10.0.0.1:8080 weight 1 owns 16385 of 65537 entries
	// 10.0.0.2:8080 weight 1 owns 16384 of 65537 entries
	// 10.0.0.3:8080 weight 2 owns 32768 of 65537 entries
	// 192.0.2.10 -> 10.0.0.2:8080
	// 192.0.2.11 -> 10.0.0.3:8080
	// 192.0.2.10 -> 10.0.0.2:8080
}

func ExampleBuild_errors() {
	_, err := maglev.Build([]maglev.Backend{{Name: "a", Weight: 1}}, maglev.Options{Size: 65536})
	fmt.Println(err)
	_, err = maglev.Build([]maglev.Backend{{Name: "a"}, {Name: "b"}}, maglev.Options{})
	fmt.Println(err)
	// Output:
	// maglev: Options.Size 65536: table size must be a prime between 2 and MaxSize
	// maglev: backends[0:2].Weight: total weight is zero
}
