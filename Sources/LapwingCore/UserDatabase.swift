#if canImport(Glibc)
import Glibc
#endif

/// Users and groups from the system's databases (passwd, group, through NSS): names for
/// uids, uids for names, and the groups a user belongs to.
public enum UserDatabase {
    /// The name of `uid`, or nil when it has none.
    public static func name(of uid: UInt32) -> String? { entry(uid).map(\.name) }

    /// The uid of a user name, or of a number given as text.
    public static func uid(of user: String) -> UInt32? {
        if let uid = UInt32(user) { return uid }
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(user, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return pwd.pw_uid
    }

    /// The names of the groups of `uid` (its primary group and the others); empty for a uid
    /// without a name.
    public static func groups(of uid: UInt32) -> Set<String> {
        guard let (name, gid) = entry(uid) else { return [] }
        var count: Int32 = 64
        var ids = [gid_t](repeating: 0, count: 64)
        if getgrouplist(name, gid, &ids, &count) < 0 {
            ids = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &ids, &count)
        }
        var names = Set<String>()
        for id in ids.prefix(Int(max(0, count))) {
            var grp = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: 16384)
            if getgrgid_r(id, &grp, &buffer, buffer.count, &result) == 0, result != nil, let g = grp.gr_name {
                names.insert(String(cString: g))
            }
        }
        return names
    }

    private static func entry(_ uid: UInt32) -> (name: String, gid: gid_t)? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil, let n = pwd.pw_name else {
            return nil
        }
        return (String(cString: n), pwd.pw_gid)
    }
}
