/// A non-negative integer of any size, with just the arithmetic ``Quantity`` needs to round exactly.
struct Natural {
    /// Base-2³² digits, least significant first, without trailing zeros: zero has none.
    private var limbs: [UInt32] = []

    /// The number written in decimal by `digits`, each from 0 to 9, most significant first.
    init(decimalDigits digits: some Sequence<UInt8>) {
        for digit in digits {
            multiply(by: 10, adding: UInt32(digit))
        }
    }

    /// Whether the number is zero.
    var isZero: Bool {
        limbs.isEmpty
    }

    /// The number, or nil when it exceeds `UInt64.max`.
    var uint64: UInt64? {
        switch limbs.count {
        case 0: 0
        case 1: UInt64(limbs[0])
        case 2: UInt64(limbs[1]) << 32 | UInt64(limbs[0])
        default: nil
        }
    }

    /// Sets the number to `self * factor + addend`; `factor` is not zero.
    mutating func multiply(by factor: UInt32, adding addend: UInt32 = 0) {
        var carry = UInt64(addend)
        for index in limbs.indices {
            let product = UInt64(limbs[index]) * UInt64(factor) + carry
            limbs[index] = UInt32(truncatingIfNeeded: product)
            carry = product >> 32
        }
        if carry > 0 {
            limbs.append(UInt32(carry))
        }
    }

    /// Sets the number to `self * 2^exponent`.
    mutating func multiply(byPowerOfTwo exponent: Int) {
        var remaining = exponent
        while remaining > 0 {
            let step = min(remaining, 31)
            multiply(by: 1 << step)
            remaining -= step
        }
    }

    /// Sets the number to `self / divisor`, rounded down, and returns the remainder.
    mutating func divide(by divisor: UInt32) -> UInt32 {
        var remainder: UInt64 = 0
        for index in limbs.indices.reversed() {
            let dividend = remainder << 32 | UInt64(limbs[index])
            limbs[index] = UInt32(dividend / UInt64(divisor))
            remainder = dividend % UInt64(divisor)
        }
        while limbs.last == 0 {
            limbs.removeLast()
        }
        return UInt32(remainder)
    }
}
