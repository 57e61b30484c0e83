/// The `errno` label of `tcp_close_total`, as the reference proxy renders it on Linux: the symbolic name of the
/// error number (`ECONNRESET`), `UNKNOWN_ERRNO` for a number it does not list (41, 58 and above 131 among them).
///
/// The numbers are Linux's, the platform the proxy runs on; the table follows the reference proxy's list exactly so
/// that queries written against it keep matching.
enum ErrnoLabel {
    static func value(for errno: Int32) -> String {
        names.indices.contains(Int(errno)) ? names[Int(errno)] : unknown
    }

    private static let unknown = "UNKNOWN_ERRNO"

    /// The name of each error number, by number.
    private static let names: [String] = [
        unknown, "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO",  // 0–5
        "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD", "EAGAIN",  // 6–11
        "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST",  // 12–17
        "EXDEV", "ENODEV", "ENOTDIR", "EISDIR", "EINVAL", "ENFILE",  // 18–23
        "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE",  // 24–29
        "EROFS", "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK",  // 30–35
        "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP", unknown,  // 36–41
        "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST",  // 42–47
        "ELNRNG", "EUNATCH", "ENOCSI", "EL2HLT", "EBADE", "EBADR",  // 48–53
        "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", unknown, "EBFONT",  // 54–59
        "ENOSTR", "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG",  // 60–65
        "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM", "EPROTO",  // 66–71
        "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD",  // 72–77
        "EREMCHG", "ELIBACC", "ELIBBAD", "ELIBSCN", "ELIBMAX", "ELIBEXEC",  // 78–83
        "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ",  // 84–89
        "EMSGSIZE", "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP",  // 90–95
        "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN", "ENETUNREACH",  // 96–101
        "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN",  // 102–107
        "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH",  // 108–113
        "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL",  // 114–119
        "EISNAM", "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED",  // 120–125
        "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD", "ENOTRECOVERABLE",  // 126–131
    ]
}
