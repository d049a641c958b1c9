using System.Net;
using System.Text;
using IpvlanCni.Cni;
using IpvlanCni.Interop;
using Microsoft.Win32.SafeHandles;

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
/// store takes the lock; it is held until Dispose, so a whole ADD/DEL/GC is one critical section.
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
    const UnixFileMode FileMode644 = (UnixFileMode)0b110_100_100; // 0644, the reference's reservation and last-IP files
    const UnixFileMode LockMode = (UnixFileMode)0b111_101_000;  // 0750, go-filemutex's create mode
    const int MaxFileBytes = 4096;

    readonly SafeFileHandle _lockFile;
    readonly IDisposable _lock;

    public string Directory { get; }

    DiskStore(string directory, SafeFileHandle lockFile, IDisposable held)
    {
        Directory = directory;
        _lockFile = lockFile;
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

    public static DiskStore Open(string dataDir, string network)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the host-local store is Linux-only");
        string dir = Path.Join(dataDir, HostLocalConfig.ValidateNetworkName(network));
        try
        {
            // dataDir and the network's folder are created (0755, as the reference) and opened without following a
            // symlink in the part created or written through; a symlink, a file or a relative path there is code 7.
            try
            {
                using var data = DirectoryHandle.OpenOrCreate(dataDir, (int)DirMode);
                using var _ = data.OpenChild(network, create: true, (int)DirMode);
            }
            catch (UnsafePathException e)
            {
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.dataDir: \"{CniNames.Truncate(dataDir)}\": {e.Message}");
            }
            var lockFile = FileLock.Open(Path.Join(dir, "lock"), LockMode);
            try
            {
                return new DiskStore(dir, lockFile, FileLock.Acquire(lockFile));
            }
            catch
            {
                lockFile.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.IoFailure, $"cannot open IPAM store {dir}: {e.Message}", inner: e);
        }
    }

    public void Dispose()
    {
        _lock.Dispose();
        _lockFile.Dispose();
    }

    string PathOf(IPAddress ip) => Path.Join(Directory, IpMath.Format(ip));

    /// <summary>
    /// Creates the address's file unless it exists (false then). The content goes to a temporary file that is then
    /// hard-linked into place, so the reservation appears whole or not at all, and never replaces an existing entry.
    /// </summary>
    public bool Reserve(string containerId, string ifName, IPAddress ip, int rangeSetIndex)
    {
        string target = PathOf(ip);
        if (EntryExists(target))
            return false;
        var content = Encoding.UTF8.GetBytes(Key(containerId, ifName));
        string temp = WriteTemp(content);
        try
        {
            File.Move(temp, target, overwrite: false);
        }
        catch (IOException) when (EntryExists(target))
        {
            TryDelete(temp);
            return false;
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        // rename() replaces the name itself, never a file a planted symlink points at.
        File.Move(WriteTemp(Encoding.UTF8.GetBytes(IpMath.Format(ip))), Path.Join(Directory, LastReservedPrefix + rangeSetIndex), overwrite: true);
        return true;
    }

    string WriteTemp(byte[] content)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException();
        string temp = Path.Join(Directory, TempPrefix + Environment.ProcessId + "." + Guid.NewGuid().ToString("N"));
        using var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, // O_EXCL: fails on any existing entry, symlinks included
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = FileMode644,
        });
        stream.Write(content);
        stream.Flush(flushToDisk: true);
        return temp;
    }

    /// <summary>The last address reserved from a range set; null when missing, unreadable or not exactly an address.</summary>
    public IPAddress? LastReserved(int rangeSetIndex)
    {
        var text = ReadSmallFile(new FileInfo(Path.Join(Directory, LastReservedPrefix + rangeSetIndex)));
        return text is not null && IpMath.TryParse(text, out var ip) ? ip : null;
    }

    /// <summary>Every reservation file (regular files named by an address; symlinks and other entries are ignored).</summary>
    public List<Reservation> List()
    {
        var list = new List<Reservation>();
        foreach (var entry in new DirectoryInfo(Directory).EnumerateFileSystemInfos())
        {
            if (!IpMath.TryParse(entry.Name, out var ip))
                continue;
            var content = ReadSmallFile(entry);
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
        var current = ReadSmallFile(new FileInfo(PathOf(ip)));
        if (current is null || current.Trim() != key)
            return false;
        File.Move(WriteTemp(Encoding.UTF8.GetBytes(Key(containerId, ifName))), PathOf(ip), overwrite: true);
        return true;
    }

    /// <summary>Removes one reservation file; a file already gone is fine.</summary>
    public void Release(IPAddress ip) => File.Delete(PathOf(ip));

    /// <summary>Temporary files a crash left behind (they hold no reservation).</summary>
    public void DeleteLeftovers()
    {
        foreach (var f in new DirectoryInfo(Directory).EnumerateFileSystemInfos(TempPrefix + "*"))
            TryDelete(f.FullName);
    }

    /// <summary>
    /// Reads a regular file's text; null for a symlink, a non-file, a missing or an oversized file. The entry's own
    /// lstat (which an enumeration already made) tells a symlink: every ADD and DEL reads every reservation file,
    /// so each syscall saved here counts once per pod on the network.
    /// </summary>
    static string? ReadSmallFile(FileSystemInfo info)
    {
        try
        {
            if (!info.Exists || (info.Attributes & (FileAttributes.ReparsePoint | FileAttributes.Directory)) != 0)
                return null;
            using var file = File.OpenHandle(info.FullName);
            Span<byte> content = stackalloc byte[MaxFileBytes + 1];
            int length = RandomAccess.Read(file, content, 0);
            return length > MaxFileBytes ? null : Encoding.UTF8.GetString(content[..length]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // the reference skips files it cannot read
        }
    }

    static bool EntryExists(string path)
    {
        return Path.Exists(path) || new FileInfo(path).LinkTarget is not null; // a dangling symlink counts
    }

    static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
