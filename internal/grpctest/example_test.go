package grpctest_test

import (
	"fmt"
	"strings"

	"github.com/rauta/rauta/internal/grpctest"
)

// A unary call to the echo server, and one to a method it does not have.
func Example() {
	srv := grpctest.EchoServer("a")
	defer srv.Close()
	c := grpctest.H2CClient()
	base := "http://" + strings.TrimPrefix(srv.URL, "http://")
	r, err := grpctest.Unary(c, base+"/echo.Echo/Say", "hello")
	fmt.Println(r.Messages, r.Status, err)
	r, err = grpctest.Unary(c, base+"/echo.Echo/Nothing", "")
	fmt.Println(r.Messages, r.Status, err)
	// Output:
	// [a:hello] 0 <nil>
	// [] 12 <nil>
}
