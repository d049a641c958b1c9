using System.Text.Json;
using System.Text.Json.Serialization;
using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Plugin;

/// <summary>
/// What one ADD set up, written before the first change to the node and updated as steps complete, so that DEL
/// (or the rollback of a failed ADD, or GC) can always find everything from (network, container ID, ifname).
/// </summary>
public sealed record AttachmentRecord
{
    public required NetworkName Network { get; init; }
    /// <summary>The whole ID, also when the file name holds only a hash of it.</summary>
    public required ContainerId ContainerId { get; init; }
    public required InterfaceName IfName { get; init; }
    public required string NetnsPath { get; init; }
    /// <summary>The pod namespace's identity at ADD: a DEL finding another namespace at that path deletes nothing there.</summary>
    public NamespaceIdentity? Netns { get; init; }
    public required InterfaceName Master { get; init; }
    /// <summary>
    /// The master's ifindex at ADD, once known: the pod link's IFLA_LINK, so DEL needs no lookup in the master's
    /// namespace. Indexes are handed out cyclically, not reused while the master's slaves can still exist.
    /// </summary>
    public int? MasterIndex { get; init; }
    /// <summary>The name the pod link has until it is renamed to IfName.</summary>
    public required InterfaceName TemporaryName { get; init; }
    public bool LinkInContainer { get; init; }
    /// <summary>Pod addresses ("10.1.1.5/24"), known once IPAM has answered.</summary>
    public List<string> Addresses { get; init => field = value ?? []; } = [];
    /// <summary>The host-side slave this pod has a host route through, once added.</summary>
    public InterfaceName? HostInterface { get; init; }
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
    public required InterfaceName Name { get; init; }
    /// <summary>The 802.1Q sub-interface was created by us (ADD of "ens10.100"), not found.</summary>
    public bool CreatedVlan { get; init; }
    /// <summary>The host-side slave (host access / egress through the node), null when none.</summary>
    public InterfaceName? HostInterface { get; init; }
    public bool CreatedHostInterface { get; init; }
    /// <summary>Addresses we put on the host-side slave ("10.0.0.5/32").</summary>
    public List<string> HostAddresses { get; init => field = value ?? []; } = [];
}

/// <summary>
/// A network namespace's identity: its cookie (SO_NETNS_COOKIE, unique for the boot) and its nsfs (st_dev, st_ino),
/// which the kernel hands to a new namespace once the old one is gone. The cookie decides when both sides have one;
/// (st_dev, st_ino) only for records written before cookies, or kernels without them (before 5.14).
/// </summary>
public sealed record NamespaceIdentity(ulong Device, ulong Inode)
{
    public ulong? Cookie { get; init; }

    public bool Matches(NamespaceIdentity other) => Cookie is { } mine && other.Cookie is { } theirs
        ? mine == theirs
        : (Device, Inode) == (other.Device, other.Inode);

    /// <summary>For file names: the cookie, or "dev-inode" without one.</summary>
    public string Key => Cookie is { } cookie ? cookie.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{Device:x}-{Inode}";
}

// Records are a few hundred bytes: the serializer's default 16 KiB buffer would only add resident pages to each ADD.
[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, DefaultBufferSize = 1024)]
[JsonSerializable(typeof(AttachmentRecord))]
[JsonSerializable(typeof(MasterRecord))]
partial class StateJsonContext : JsonSerializerContext;

/// <summary>
/// The plugin's state: attachment records under stateDir (per network), and the node's registry (one per node's
/// network namespace, whatever stateDir a network names): the lock every host-side change happens under, the masters
/// the plugin created things on, and which attachments of any network use each master.
/// <para>
/// Layout (every name derived from parsed names in <see cref="RecordName"/>, so no valid name can reach another
/// kind of file): stateDir/attachments/&lt;network&gt;/&lt;record&gt;, stateDir/tmp/ (temporaries only);
/// node/lock, node/masters/&lt;master&gt;, node/users/&lt;master&gt;/&lt;network&gt;/&lt;record&gt;, node/tmp/. Files are
/// created, replaced and removed only through directory handles (openat with O_NOFOLLOW): a symlink is never followed.
/// </para>
/// </summary>
public sealed class StateStore : IDisposable
{
    /// <summary>The node's registry lives on tmpfs: like the links it describes, it does not survive a reboot.</summary>
    public const string NodeRoot = "/run/ipvlan-cni";
    /// <summary>Records are a few hundred bytes; anything larger was not written by us.</summary>
    const int MaxRecordBytes = 64 * 1024;

    readonly DirectoryHandle _root;
    readonly DirectoryHandle _temporaries;
    readonly string _nodePath;
    DirectoryHandle? _node, _nodeTemporaries, _attachmentLocks;
    int _sequence;

    StateStore(DirectoryHandle root, DirectoryHandle temporaries, string nodePath)
    {
        _root = root;
        _temporaries = temporaries;
        _nodePath = nodePath;
    }

    public string Root => _root.Path;

    /// <summary>
    /// Opens (creating) stateDir without following a symlink in it; the node's registry is the folder of this
    /// process's network namespace under <see cref="NodeRoot"/> (tests pass another root).
    /// </summary>
    public static StateStore Open(string stateDir, string nodeRoot = NodeRoot)
    {
        DirectoryHandle? root = null;
        try
        {
            root = DirectoryHandle.OpenOrCreate(stateDir);
            var temporaries = root.OpenChild("tmp", create: true)!;
            return new StateStore(root, temporaries, $"{nodeRoot}/{NodeFolderName()}");
        }
        catch (UnsafePathException e)
        {
            root?.Dispose();
            throw PluginConfig.Invalid("stateDir", $"\"{CniNames.Truncate(stateDir)}\": {e.Message}");
        }
    }

    /// <summary>
    /// The node is the network namespace this plugin runs in: its links are what the registry describes. Named by the
    /// namespace's cookie (never reused within a boot), or on kernels without cookies by its nsfs identity.
    /// </summary>
    public static string NodeFolderName() => $"net-{NodeNamespace.Key}";

    /// <summary>
    /// The identity of the namespace the calling thread runs in, the node's (one unix socket's cookie; not cached:
    /// a test host asks from many namespaces).
    /// </summary>
    public static NamespaceIdentity NodeNamespace
    {
        get
        {
            if (Libc.GetNetworkNamespaceCookie() is { } cookie)
                return new NamespaceIdentity(0, 0) { Cookie = cookie };
            using var ns = Libc.Open("/proc/thread-self/ns/net");
            var status = Libc.Stat(ns);
            return new NamespaceIdentity(status.Device, status.Inode);
        }
    }

    /// <summary>A folder or file of ours that is not what we made (a symlink, a file for a folder): refuse to write through it.</summary>
    static CniException Refused(UnsafePathException e) =>
        new(CniErrorCode.IoFailure, $"the plugin's state: {e.Message}; refusing to write through it");

    DirectoryHandle Node
    {
        get
        {
            if (_node is null)
            {
                try
                {
                    _node = DirectoryHandle.OpenOrCreate(_nodePath);
                    _nodeTemporaries = _node.OpenChild("tmp", create: true)!;
                }
                catch (UnsafePathException e)
                {
                    throw new CniException(CniErrorCode.IoFailure, $"the node's state folder {e.Message}");
                }
            }
            return _node;
        }
    }

    /// <summary>
    /// Takes the node-wide lock, waiting at most <paramref name="timeout"/>: then code 11 (try again later). Take it
    /// only after opening whatever the request names (netns, files) and inside <see cref="LockAttachment"/>; nothing
    /// whose answer a request controls runs under it (IPAM runs between two holds of it).
    /// </summary>
    public IDisposable Lock(TimeSpan timeout)
    {
        FileDescriptor file;
        try
        {
            file = Node.OpenLockFile("lock");
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
        try
        {
            return FileLock.TryAcquire(file, timeout) ?? throw new CniException(CniErrorCode.TryAgainLater,
                $"the node's plugin lock ({_nodePath}/lock) stayed taken for {timeout.TotalSeconds:0.#} s; try again later");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes the lock of one attachment (network, container ID, ifname), waiting at most <paramref name="timeout"/>:
    /// then code 11. ADD, DEL and GC of the attachment hold it throughout and take the node lock only inside it, never
    /// the other way round. IPAM, whose answer a request controls (a delegated plugin, the agent, the wire probe, a
    /// host-local store's lock), runs under this lock alone: a slow answer holds back only the same attachment's next
    /// call (a runtime's DEL after its ADD timed out), never another pod's.
    /// </summary>
    public IDisposable LockAttachment(NetworkName network, ContainerId id, InterfaceName ifName, TimeSpan timeout)
    {
        string name = AttachmentLockName(network, id, ifName);
        try
        {
            return FileLock.TryAcquireRemovable(AttachmentLocks, name, timeout) ?? throw new CniException(CniErrorCode.TryAgainLater,
                $"another call for container {id} and {ifName} on network {network} held its lock for {timeout.TotalSeconds:0.#} s; try again later");
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    DirectoryHandle AttachmentLocks => _attachmentLocks ??= Node.OpenChild("attachment-locks", create: true)!;

    /// <summary>
    /// Removes the attachment locks a killed call left (its holder removes one as it lets go): each that nobody holds
    /// is taken without waiting and let go, which removes it; one a live call holds stays.
    /// </summary>
    public void DeleteAbandonedAttachmentLocks()
    {
        try
        {
            foreach (string name in AttachmentLocks.ListNames())
            {
                // Only names we make (64 hex digits), and only regular files: anything else put there is not ours.
                if (name.Length != 64 || name.AsSpan().IndexOfAnyExcept("0123456789abcdef") >= 0)
                    continue;
                try
                {
                    FileLock.TryAcquireRemovable(AttachmentLocks, name, TimeSpan.Zero)?.Dispose();
                }
                catch (UnsafePathException)
                {
                    // Not a regular file: left alone, and no reason to fail the whole GC.
                }
            }
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    /// <summary>
    /// The one place file names come from. A record is "&lt;container ID&gt;@&lt;ifname&gt;" ('@' is in neither name);
    /// when that would pass 200 bytes, the ID's first 128 characters, '~' and the SHA-256 of the whole pair (no
    /// container ID holds '~'). The whole ID is in the record; temporaries live in their own folder, never beside it.
    /// </summary>
    public static string RecordName(ContainerId id, InterfaceName ifName)
    {
        string plain = $"{id.Value}@{ifName.Value}";
        if (plain.Length <= 200)
            return plain;
        return $"{id.Value[..128]}~{Convert.ToHexStringLower(IpvlanCni.Network.Sha256.Hash(System.Text.Encoding.UTF8.GetBytes(plain)))}@{ifName.Value}";
    }

    /// <summary>An attachment's lock: the SHA-256 of the three names (NUL is in none of them), the same for any stateDir.</summary>
    public static string AttachmentLockName(NetworkName network, ContainerId id, InterfaceName ifName) =>
        Convert.ToHexStringLower(IpvlanCni.Network.Sha256.Hash(System.Text.Encoding.UTF8.GetBytes($"{network.Value}\0{id.Value}\0{ifName.Value}")));

    public AttachmentRecord? TryLoadAttachment(NetworkName network, ContainerId id, InterfaceName ifName)
    {
        using var folder = TryOpen(() => AttachmentFolder(network, create: false));
        if (folder is null)
            return null;
        var record = Read(folder, RecordName(id, ifName), StateJsonContext.Default.AttachmentRecord);
        // A record under the name of another pair is not this attachment's (a hash collision, or a foreign file).
        return record is not null && record.Network == network && record.ContainerId == id && record.IfName == ifName ? record : null;
    }

    public void Save(AttachmentRecord record)
    {
        try
        {
            using var folder = AttachmentFolder(record.Network, create: true)!;
            Write(folder, RecordName(record.ContainerId, record.IfName), JsonSerializer.SerializeToUtf8Bytes(record, StateJsonContext.Default.AttachmentRecord), _temporaries);
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    /// <summary>The last step of every teardown: once the record is gone nothing points at what it described.</summary>
    public void Remove(AttachmentRecord record)
    {
        using var folder = TryOpen(() => AttachmentFolder(record.Network, create: false));
        if (folder is null)
            return; // absent, or a folder that is not ours: nothing of ours to remove there
        try
        {
            folder.DeleteFile(RecordName(record.ContainerId, record.IfName));
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
        using var attachments = TryOpen(() => _root.OpenChild("attachments", create: false));
        attachments?.TryDeleteDirectory(record.Network.Value); // only when it was the network's last
    }

    /// <summary>Every attachment of one network, or of all networks when network is null.</summary>
    public List<AttachmentRecord> ListAttachments(NetworkName? network = null) => [.. EnumerateAttachments(network)];

    /// <summary>
    /// The same records, read one by one as the caller asks: a search that stops at its first match reads one or
    /// two files, not every pod's (which made a node's ADDs quadratic in its pods).
    /// </summary>
    public IEnumerable<AttachmentRecord> EnumerateAttachments(NetworkName? network = null)
    {
        using var attachments = TryOpen(() => _root.OpenChild("attachments", create: false));
        if (attachments is null)
            yield break;
        var networks = network is null ? attachments.ListNames() : [network.Value];
        foreach (string name in networks)
        {
            if (!NetworkName.TryParse(name, out var parsed, out _))
                continue; // not a folder we made
            // A symlink or a file there is not ours.
            var folder = TryOpen(() => attachments.OpenChild(name, create: false));
            if (folder is null)
                continue;
            using (folder)
            {
                foreach (string file in folder.ListNames())
                    if (Read(folder, file, StateJsonContext.Default.AttachmentRecord) is { } record && record.Network == parsed
                        && RecordName(record.ContainerId, record.IfName) == file)
                        yield return record;
            }
        }
    }

    public MasterRecord? TryLoadMaster(InterfaceName name)
    {
        using var masters = TryOpen(() => Node.OpenChild("masters", create: false));
        return masters is null ? null : Read(masters, name.Value, StateJsonContext.Default.MasterRecord) is { } record && record.Name == name ? record : null;
    }

    public void Save(MasterRecord record)
    {
        try
        {
            using var masters = Node.OpenChild("masters", create: true)!;
            Write(masters, record.Name.Value, JsonSerializer.SerializeToUtf8Bytes(record, StateJsonContext.Default.MasterRecord), _nodeTemporaries!);
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    public void RemoveMaster(InterfaceName name)
    {
        using var masters = TryOpen(() => Node.OpenChild("masters", create: false));
        masters?.DeleteFile(name.Value);
    }

    /// <summary>
    /// Registers an attachment as a user of a master (node-wide, across every stateDir) before ADD creates anything
    /// on it; the master's VLAN and host-side slave live while any user is registered.
    /// </summary>
    public void AddUser(InterfaceName master, AttachmentRecord user)
    {
        try
        {
            using var masterUsers = UsersFolder(master, create: true)!;
            using var network = masterUsers.OpenChild(user.Network.Value, create: true)!;
            network.TryCreateFile(RecordName(user.ContainerId, user.IfName));
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    public void RemoveUser(InterfaceName master, AttachmentRecord user)
    {
        using var masterUsers = TryOpen(() => UsersFolder(master, create: false));
        if (masterUsers is null)
            return;
        using (var network = TryOpen(() => masterUsers.OpenChild(user.Network.Value, create: false)))
            network?.DeleteFile(RecordName(user.ContainerId, user.IfName));
        masterUsers.TryDeleteDirectory(user.Network.Value);
        using var users = TryOpen(() => Node.OpenChild("users", create: false));
        users?.TryDeleteDirectory(master.Value);
    }

    /// <summary>
    /// Node-wide, across every network and stateDir: which attachment's link holds an interface name in a pod
    /// namespace. node/claims/&lt;namespace key&gt;@&lt;ifname&gt; holds the claiming ADD's temporary name (random per
    /// ADD), so a record that never got as far as its claim cannot remove another's. Written under the lock after
    /// the record and before the link; removed after the link, before the record.
    /// </summary>
    static string ClaimName(NamespaceIdentity ns, InterfaceName ifName) => $"{ns.Key}@{ifName.Value}";

    /// <summary>The temporary name of the ADD that claims <paramref name="ifName"/> in <paramref name="ns"/>, or null when none does.</summary>
    public string? ClaimOf(NamespaceIdentity ns, InterfaceName ifName)
    {
        using var claims = TryOpen(() => Node.OpenChild("claims", create: false));
        return claims?.TryReadFile(ClaimName(ns, ifName), 64) is { } owner ? System.Text.Encoding.UTF8.GetString(owner) : null;
    }

    public void Claim(AttachmentRecord record)
    {
        try
        {
            using var claims = Node.OpenChild("claims", create: true)!;
            claims.WriteAtomically(ClaimName(record.Netns!, record.IfName), System.Text.Encoding.UTF8.GetBytes(record.TemporaryName.Value),
                _nodeTemporaries!, $"{Environment.ProcessId}.{++_sequence}");
        }
        catch (UnsafePathException e)
        {
            throw Refused(e);
        }
    }

    /// <summary>Removes the record's claim, when it is this record's.</summary>
    public void Unclaim(AttachmentRecord record)
    {
        if (record.Netns is not { } ns)
            return;
        using var claims = TryOpen(() => Node.OpenChild("claims", create: false));
        string name = ClaimName(ns, record.IfName);
        if (claims?.TryReadFile(name, 64) is { } owner && System.Text.Encoding.UTF8.GetString(owner) == record.TemporaryName.Value)
            claims.DeleteFile(name);
    }

    /// <summary>The host-side slaves the master records of the node name (for links no pod teardown may remove).</summary>
    public IEnumerable<InterfaceName> HostInterfaces()
    {
        using var masters = TryOpen(() => Node.OpenChild("masters", create: false));
        if (masters is null)
            yield break;
        foreach (string name in masters.ListNames())
            if (Read(masters, name, StateJsonContext.Default.MasterRecord) is { HostInterface: { } host })
                yield return host;
    }

    /// <summary>Any attachment other than <paramref name="except"/>, of any network on the node, still uses the master.</summary>
    public bool HasOtherUsers(InterfaceName master, AttachmentRecord except)
    {
        DirectoryHandle? masterUsers;
        try
        {
            masterUsers = UsersFolder(master, create: false);
        }
        catch (UnsafePathException)
        {
            return true; // the registry is not what we made: it cannot say the master is unused, so it is kept
        }
        if (masterUsers is null)
            return false;
        using (masterUsers)
        {
            string own = RecordName(except.ContainerId, except.IfName);
            foreach (string network in masterUsers.ListNames())
            {
                using var folder = TryOpen(() => masterUsers.OpenChild(network, create: false));
                if (folder is null || folder.ListNames().Any(name => network != except.Network.Value || name != own))
                    return true;
            }
            return false;
        }
    }

    /// <summary>
    /// Removes what a plugin killed in the middle of a write left behind. Call it holding <see cref="Lock"/>: every
    /// write happens under the lock, so no temporary then belongs to a live writer.
    /// </summary>
    public void DeleteTemporaries()
    {
        _ = Node;
        foreach (var folder in new[] { _temporaries, _nodeTemporaries! })
        {
            foreach (string name in folder.ListNames())
            {
                try
                {
                    folder.DeleteFile(name); // unlinks a planted symlink itself, never its target
                }
                catch (UnsafePathException)
                {
                    // A folder someone made there: no temporary of ours, and not ours to remove.
                }
            }
        }
    }

    public void Dispose()
    {
        _temporaries.Dispose();
        _root.Dispose();
        _nodeTemporaries?.Dispose();
        _attachmentLocks?.Dispose();
        _node?.Dispose();
    }

    /// <summary>A folder for reading: absent, or not what we made (a symlink, a file), are both null.</summary>
    static DirectoryHandle? TryOpen(Func<DirectoryHandle?> open)
    {
        try
        {
            return open();
        }
        catch (UnsafePathException)
        {
            return null;
        }
    }

    DirectoryHandle? AttachmentFolder(NetworkName network, bool create)
    {
        using var attachments = _root.OpenChild("attachments", create);
        return attachments?.OpenChild(network.Value, create);
    }

    DirectoryHandle? UsersFolder(InterfaceName master, bool create)
    {
        using var users = Node.OpenChild("users", create);
        return users?.OpenChild(master.Value, create);
    }

    static T? Read<T>(DirectoryHandle folder, string name, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        if (folder.TryReadFile(name, MaxRecordBytes) is not { } bytes)
            return null;
        try
        {
            return JsonSerializer.Deserialize(bytes, type);
        }
        catch (JsonException)
        {
            // Only a foreign hand can leave a broken record (ours are renamed into place whole); ignore it.
            return null;
        }
    }

    void Write(DirectoryHandle folder, string name, byte[] bytes, DirectoryHandle temporaries) =>
        folder.WriteAtomically(name, bytes, temporaries, $"{Environment.ProcessId}.{++_sequence}");
}
