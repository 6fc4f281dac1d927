package mask_test

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/mask"
)

func ExampleMasker_AppendMask() {
	m, err := mask.New(mask.DefaultConfig())
	if err != nil {
		panic(err)
	}
	row := []byte(`{"card":"4111 1111 1111 1111","email":"jane@example.org","ssn":"078-05-1120","order":"ORD-41111111111111112222"}`)
	if !m.Scan(row) {
		return // forward the original bytes
	}
	out, found := m.AppendMask(nil, row)
	fmt.Println(string(out))
	fmt.Println(found, "values masked")
	// Output:
	// {"card":"4111 11** **** 1111","email":"j***@example.org","ssn":"***-**-1120","order":"ORD-41111111111111112222"}
	// 3 values masked
}

func ExampleMasker_AppendStrategy() {
	m, err := mask.New(mask.Config{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	s, err := mask.ParseStrategy("last4")
	if err != nil {
		panic(err)
	}
	out, _ := m.AppendStrategy(nil, []byte("4111-1111-1111-1111"), s)
	fmt.Println(string(out))
	_, isNull := m.AppendStrategy(nil, []byte("4111-1111-1111-1111"), mask.StrategyNull)
	fmt.Println(isNull)
	// Output:
	// ****-****-****-1111
	// true
}
