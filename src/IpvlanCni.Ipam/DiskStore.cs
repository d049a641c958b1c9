using System.Net;
using System.Text;
using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Ipam;

/// <summary>One reservation file: the address is its name; the content is "id\r\nifname" (or just "id", pre-0.7 format).</summary>
public sealed record Reservation(IPAddress Address, string ContainerId, string? IfName)
{
    /// <summary>The file content after Go's strings.TrimSpace: what the reference compares.</summary>
    public required string Key { get; init; }
}

/// <summary>
/// The reference host-local disk store (backend/disk, 1.1.1): &lt;dataDir&gt;/&lt;network&gt;/ (0755) holding one 0644 file
/// per reserved address, last_reserved_ip.&lt;set&gt; and an empty "lock" file (0750) that both plugins flock. Opening the
/// store takes the lock (waiting at most <see cref="LockTimeout"/>); it is held until Dispose, so a whole ADD/DEL/GC is
/// one critical section. Inside the network's folder every file is created, read, linked and removed through its
/// directory handle (openat, linkat, renameat, unlinkat with O_NOFOLLOW): a symlink planted there is never followed.
/// </summary>
internal sealed class DiskStore : IDisposable
{
    public const string LineBreak = "\r\n";

    /// <summary>The content of a reservation file, as host-local writes it: the trimmed container ID, CRLF, the ifname.</summary>
    public static string Key(string containerId, string ifName) => LegacyKey(containerId) + LineBreak + ifName;

    /// <summary>The content of a reservation file of host-local before 0.8 (the container ID only).</summary>
    public static string LegacyKey(string containerId) => containerId.Trim();
    const string LastReservedPrefix = "last_reserved_ip.";
    const string TempPrefix = ".ipvlan-cni-tmp.";
    const UnixFileMode DirMode = (UnixFileMode)0b111_101_101;   // 0755, os.MkdirAll(dir, 0755)
    const int FileMode644 = 0b110_100_100; // 0644, the reference's reservation and last-IP files
    const int LockMode = 0b111_101_000;    // 0750, go-filemutex's create mode
    const int MaxFileBytes = 4096;
    /// <summary>How long a request waits for the store's lock (the reference host-local holds it for one call).</summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);

    readonly DirectoryHandle _folder;
    readonly IDisposable? _lock;
    int _sequence;

    public string Directory => _folder.Path;

    DiskStore(DirectoryHandle folder, IDisposable? held)
    {
        _folder = folder;
        _lock = held;
    }

    /// <summary>
    /// Refuses (code 7) a dataDir the store could not safely use, before ADD records or changes anything: a failure
    /// found only at the reservation would fail the rollback's release too.
    /// </summary>
    public static HostLocalConfig CheckDataDir(HostLocalConfig config)
    {
        try
        {
            DirectoryHandle.OpenOrCreate(config.DataDir, (int)DirMode).Dispose();
        }
        catch (UnsafePathException e)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.dataDir: \"{CniNames.Truncate(config.DataDir)}\": {e.Message}");
        }
        return config;
    }

    /// <summary>
    /// Opens the network's folder and takes its lock. A symlink, a file or a relative path in the part created or
    /// written through, and a lock that is not a regular file (a planted symlink), are code 7 naming ipam.dataDir;
    /// a lock held past <see cref="LockTimeout"/> is code 11.
    /// </summary>
    public static DiskStore Open(string dataDir, string network)
    {
        var folder = OpenFolder(dataDir, network);
        try
        {
            FileDescriptor lockFile;
            try
            {
                lockFile = folder.OpenLockFile("lock", LockMode);
            }
            catch (UnsafePathException e)
            {
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.dataDir: {e.Message}; the store's lock must be a regular file");
            }
            try
            {
                var held = FileLock.TryAcquire(lockFile, LockTimeout) ?? throw new CniException(CniErrorCode.TryAgainLater,
                    $"the IPAM store's lock ({folder.Path}/lock) stayed taken for {LockTimeout.TotalSeconds:0} s; try again later");
                return new DiskStore(folder, held);
            }
            catch
            {
                lockFile.Dispose();
                throw;
            }
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>The store without its lock, for reading only: whether a DEL has anything to release when the lock is unusable.</summary>
    public static DiskStore? TryOpenUnlocked(string dataDir, string network)
    {
        try
        {
            return new DiskStore(OpenFolder(dataDir, network), null);
        }
        catch (CniException)
        {
            return null;
        }
    }

    static DirectoryHandle OpenFolder(string dataDir, string network)
    {
        HostLocalConfig.ValidateNetworkName(network);
        // dataDir and the network's folder are created (0755, as the reference) and opened without following a
        // symlink in the part created or written through; a symlink, a file or a relative path there is code 7.
        try
        {
            using var data = DirectoryHandle.OpenOrCreate(dataDir, (int)DirMode);
            return data.OpenChild(network, create: true, (int)DirMode)!;
        }
        catch (UnsafePathException e)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.dataDir: \"{CniNames.Truncate(dataDir)}\": {e.Message}");
        }
    }

    public void Dispose()
    {
        _lock?.Dispose();
        _folder.Dispose();
    }

    string TemporaryName() => $"{TempPrefix}{Environment.ProcessId}.{++_sequence}";

    /// <summary>
    /// Creates the address's file unless it exists (false then). The content goes to a temporary file that is then
    /// hard-linked into place, so the reservation appears whole or not at all, and never replaces an existing entry.
    /// </summary>
    public bool Reserve(string containerId, string ifName, IPAddress ip, int rangeSetIndex)
    {
        string name = IpMath.Format(ip);
        if (_folder.Exists(name))
            return false;
        if (!_folder.TryCreateWhole(name, Encoding.UTF8.GetBytes(Key(containerId, ifName)), TemporaryName(), FileMode644, sync: true))
            return false;
        // renameat() replaces the name itself, never a file a planted symlink points at.
        _folder.WriteAtomically(LastReservedPrefix + rangeSetIndex, Encoding.UTF8.GetBytes(name), _folder, TemporaryName(), FileMode644, sync: true);
        return true;
    }

    /// <summary>The last address reserved from a range set; null when missing, unreadable or not exactly an address.</summary>
    public IPAddress? LastReserved(int rangeSetIndex)
    {
        var text = ReadSmallFile(LastReservedPrefix + rangeSetIndex);
        return text is not null && IpMath.TryParse(text, out var ip) ? ip : null;
    }

    /// <summary>Every reservation file (regular files named by an address; symlinks and other entries are ignored).</summary>
    public List<Reservation> List()
    {
        var list = new List<Reservation>();
        foreach (string name in _folder.ListNames())
        {
            if (!IpMath.TryParse(name, out var ip))
                continue;
            var content = ReadSmallFile(name);
            if (content is null)
                continue;
            string key = content.Trim();
            int br = key.IndexOf(LineBreak, StringComparison.Ordinal);
            list.Add(br < 0
                ? new Reservation(ip, key, null) { Key = key }
                : new Reservation(ip, key[..br], key[(br + LineBreak.Length)..]) { Key = key });
        }
        return list;
    }

    /// <summary>
    /// Gives a reservation held under <paramref name="key"/> to another owner (written to a temporary and renamed over
    /// it, so it is never absent); false when the address is not reserved under that key.
    /// </summary>
    public bool Transfer(IPAddress ip, string key, string containerId, string ifName)
    {
        string name = IpMath.Format(ip);
        var current = ReadSmallFile(name);
        if (current is null || current.Trim() != key)
            return false;
        _folder.WriteAtomically(name, Encoding.UTF8.GetBytes(Key(containerId, ifName)), _folder, TemporaryName(), FileMode644, sync: true);
        return true;
    }

    /// <summary>Removes one reservation file; a file already gone is fine.</summary>
    public void Release(IPAddress ip) => _folder.DeleteFile(IpMath.Format(ip));

    /// <summary>Temporary files a crash left behind (they hold no reservation).</summary>
    public void DeleteLeftovers()
    {
        foreach (string name in _folder.ListNames())
            if (name.StartsWith(TempPrefix, StringComparison.Ordinal))
            {
                try
                {
                    _folder.DeleteFile(name);
                }
                catch (UnsafePathException)
                {
                    // A folder someone made there: not a temporary of ours.
                }
            }
    }

    /// <summary>A regular file's text (openat O_NOFOLLOW, typed, capped); null for a symlink, a non-file, a missing or an oversized file.</summary>
    string? ReadSmallFile(string name) => _folder.TryReadFile(name, MaxFileBytes) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;
}
