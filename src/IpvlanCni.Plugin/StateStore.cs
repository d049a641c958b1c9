using System.Text.Json;
using System.Text.Json.Serialization;
using IpvlanCni.Interop;

namespace IpvlanCni.Plugin;

/// <summary>
/// What one ADD set up, written before the first change to the node and updated as steps complete, so that DEL
/// (or the rollback of a failed ADD, or GC) can always find everything from (network, container ID, ifname).
/// </summary>
public sealed record AttachmentRecord
{
    public required string Network { get; init; }
    public required string ContainerId { get; init; }
    public required string IfName { get; init; }
    public required string NetnsPath { get; init; }
    public required string Master { get; init; }
    /// <summary>The name the pod link has until it is renamed to IfName.</summary>
    public required string TemporaryName { get; init; }
    public bool LinkInContainer { get; init; }
    /// <summary>Pod addresses ("10.1.1.5/24"), known once IPAM has answered.</summary>
    public List<string> Addresses { get; init => field = value ?? []; } = [];
    /// <summary>The host-side slave this pod has a host route through, once added.</summary>
    public string? HostInterface { get; init; }
    /// <summary>The subnets this pod's NAT rules cover, once added.</summary>
    public List<string> MasqueradedSubnets { get; init => field = value ?? []; } = [];
    /// <summary>
    /// The ipvlan mode and flag this ADD asked for ("l2 bridge"). While another pod of ours on the master was added with
    /// the same, a new ADD need not ask a live slave for the port's setting.
    /// </summary>
    public string? PortSetting { get; init; }
    /// <summary>The NAT backend that holds this network's rules ("nftables", "iptables-legacy"), once chosen.</summary>
    public string? NatBackend { get; init; }
}

/// <summary>What the plugin created on a master and must remove with its last pod, never before, never otherwise.</summary>
public sealed record MasterRecord
{
    public required string Name { get; init; }
    /// <summary>The 802.1Q sub-interface was created by us (ADD of "ens10.100"), not found.</summary>
    public bool CreatedVlan { get; init; }
    /// <summary>The host-side slave (host access / egress through the node), null when none.</summary>
    public string? HostInterface { get; init; }
    public bool CreatedHostInterface { get; init; }
    /// <summary>Addresses we put on the host-side slave ("10.0.0.5/32").</summary>
    public List<string> HostAddresses { get; init => field = value ?? []; } = [];
}

// Records are a few hundred bytes: the serializer's default 16 KiB buffer would only add resident pages to each ADD.
[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, DefaultBufferSize = 1024)]
[JsonSerializable(typeof(AttachmentRecord))]
[JsonSerializable(typeof(MasterRecord))]
partial class StateJsonContext : JsonSerializerContext;

/// <summary>
/// The plugin's own state on the node: one small file per attachment and per master, under one lock.
/// Files are replaced by rename (a crash never leaves half a record) and never read through a symlink.
/// </summary>
public sealed class StateStore(string root)
{
    public string Root { get; } = root;
    string AttachmentsDir => Path.Combine(Root, "attachments");
    string MastersDir => Path.Combine(Root, "masters");

    /// <summary>Serialises every plugin invocation that touches host-side state (flock on &lt;root&gt;/lock).</summary>
    public IDisposable Lock()
    {
        CreateDirectory(Root);
        var handle = FileLock.Open(Path.Combine(Root, "lock"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            return new HeldLock(handle, FileLock.Acquire(handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Unlocks and closes the lock file: FileLock's handle only unlocks, and an unclosed fd lingers until a GC.</summary>
    sealed class HeldLock(Microsoft.Win32.SafeHandles.SafeFileHandle file, IDisposable held) : IDisposable
    {
        public void Dispose()
        {
            held.Dispose();
            file.Dispose();
        }
    }

    public AttachmentRecord? TryLoadAttachment(string network, string containerId, string ifName) => InOwnFolders(network)
        ? Read(AttachmentPath(network, containerId, ifName), StateJsonContext.Default.AttachmentRecord)
        : null;

    public void Save(AttachmentRecord record)
    {
        CreateDirectory(AttachmentsDir);
        CreateDirectory(Path.Combine(AttachmentsDir, record.Network));
        Write(AttachmentPath(record.Network, record.ContainerId, record.IfName), record, StateJsonContext.Default.AttachmentRecord);
    }

    public void Remove(AttachmentRecord record)
    {
        if (InOwnFolders(record.Network))
            Delete(AttachmentPath(record.Network, record.ContainerId, record.IfName));
    }

    /// <summary>Every attachment of one network, or of all networks when network is null.</summary>
    public List<AttachmentRecord> ListAttachments(string? network = null) => [.. EnumerateAttachments(network)];

    /// <summary>
    /// The same records, read one by one as the caller asks: a search that stops at its first match reads one or
    /// two files, not every pod's (which made a node's ADDs quadratic in its pods).
    /// </summary>
    public IEnumerable<AttachmentRecord> EnumerateAttachments(string? network = null)
    {
        if (!Directory.Exists(AttachmentsDir) || IsLink(AttachmentsDir))
            yield break;
        var dirs = network is null ? Directory.GetDirectories(AttachmentsDir) : [Path.Combine(AttachmentsDir, network)];
        foreach (string dir in dirs)
        {
            if (!Directory.Exists(dir) || IsLink(dir))
                continue;
            foreach (string file in Directory.GetFiles(dir))
                if (!file.EndsWith(".tmp", StringComparison.Ordinal) && Read(file, StateJsonContext.Default.AttachmentRecord) is { } record)
                    yield return record;
        }
    }

    public MasterRecord? TryLoadMaster(string name) => IsLink(MastersDir) ? null : Read(MasterPath(name), StateJsonContext.Default.MasterRecord);

    public void Save(MasterRecord record)
    {
        CreateDirectory(MastersDir);
        Write(MasterPath(record.Name), record, StateJsonContext.Default.MasterRecord);
    }

    public void RemoveMaster(string name)
    {
        if (!IsLink(MastersDir))
            Delete(MasterPath(name));
    }

    // Names were validated (container-ID charset, kernel interface-name rules): none holds '/' or is "." or "..".
    // The container ID cannot hold '@', so the first '@' splits the name unambiguously.
    string AttachmentPath(string network, string containerId, string ifName) =>
        Path.Combine(AttachmentsDir, network, $"{containerId}@{ifName}");

    string MasterPath(string name) => Path.Combine(MastersDir, name);

    /// <summary>
    /// Removes the temporaries a plugin killed in the middle of a write left behind. Call it holding <see cref="Lock"/>:
    /// every write happens under the lock, so no temporary then belongs to a live writer.
    /// </summary>
    public void DeleteTemporaries(string network)
    {
        // One network's folder: every DEL or GC of another network cleans its own.
        var dirs = new List<string> { MastersDir };
        if (Directory.Exists(AttachmentsDir) && !IsLink(AttachmentsDir))
            dirs.Add(Path.Combine(AttachmentsDir, network));
        foreach (string dir in dirs.Where(d => Directory.Exists(d) && !IsLink(d)))
            foreach (string temporary in Directory.GetFiles(dir, "*.tmp"))
                File.Delete(temporary); // unlinks a planted symlink itself, never its target
    }

    /// <summary>Neither attachments/ nor its network folder is a symlink: a record reached through one is not ours to read or delete.</summary>
    bool InOwnFolders(string network) => !IsLink(AttachmentsDir) && !IsLink(Path.Combine(AttachmentsDir, network));

    static void CreateDirectory(string path)
    {
        if (IsLink(path))
            throw new IOException($"{path} is a symbolic link; refusing to use it");
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    static T? Read<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        if (!File.Exists(path) || IsLink(path))
            return null;
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), type);
        }
        catch (JsonException)
        {
            // Only a foreign hand can leave a broken record (ours are renamed into place whole); ignore it.
            return null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    static void Write<T>(string path, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        WriteAtomically(path, stream => JsonSerializer.Serialize(stream, value, type));

    /// <summary>Writes a temporary and renames it into place: readers see the old content or the new, never half.</summary>
    static void WriteAtomically(string path, Action<Stream> write)
    {
        string temporary = path + ".tmp";
        File.Delete(temporary);
        using (var stream = new FileStream(temporary, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew,
                   Access = FileAccess.Write,
                   BufferSize = 0, // the writer hands over whole buffers: no second one in between
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            write(stream);
        }
        File.Move(temporary, path, overwrite: true);
    }

    static void Delete(string path)
    {
        if (!Directory.Exists(Path.GetDirectoryName(path)))
            return; // nothing was ever written there
        File.Delete(path);
        File.Delete(path + ".tmp");
    }
}
