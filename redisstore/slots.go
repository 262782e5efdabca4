package redisstore

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// crcTable is the CRC16 (XMODEM, polynomial 0x1021) of each byte.
var crcTable = func() (t [256]uint16) {
	for b := range t {
		crc := uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[b] = crc
	}
	return t
}()

// slotOf returns the hash slot of a Redis key, as Redis Cluster works it
// out: the CRC16 of the key's hash tag, the text between its first "{" and
// the next "}" if that is not empty, or else of the whole key.
func slotOf(key string) int {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				break
			}
		}
		break
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return int(crc) % slots
}
