using IpvlanCni.Cni;

namespace IpvlanCni.Install;

/// <summary>A conflist to install: its file name in the configuration folder and content that passed the check.</summary>
public sealed record Conflist(FileName Name, byte[] Content)
{
    public const int MaxBytes = IpvlanCni.Interop.RegularFile.MaxBytes;

    /// <summary>The name a configuration folder knows it by: libcni reads a .conflist as a list of plugins.</summary>
    public static FileName ParseName(string text)
    {
        if (!FileName.TryParse(text, out var name, out string problem))
            throw new UsageException($"--conflist '{text}' {problem}");
        if (!text.EndsWith(".conflist", StringComparison.Ordinal) || text.StartsWith('.'))
            throw new UsageException($"--conflist '{text}': the name must end in .conflist and not start with '.' (the runtime skips other names)");
        return name;
    }

    /// <summary>Reads and checks the file at <paramref name="path"/>; it keeps its file name.</summary>
    public static Conflist Read(string path)
    {
        var name = ParseName(Path.GetFileName(path));
        byte[] content;
        try
        {
            // The one bounded reader: a FIFO is refused, not waited on; /dev/zero is not a regular file.
            content = IpvlanCni.Interop.RegularFile.Read(path, MaxBytes);
        }
        catch (IpvlanCni.Interop.UnsafePathException e)
        {
            throw new InstallException(InstallProblem.InvalidConflist, $"--conflist {path}: {e.Reason}", e);
        }
        catch (IpvlanCni.Interop.SystemCallException e)
        {
            throw new InstallException(InstallProblem.InvalidConflist,
                $"--conflist {path}: {(e.Errno == IpvlanCni.Interop.Errno.ENOENT ? "no such file" : IpvlanCni.Interop.ErrnoInfo.Describe((int)e.Errno))}", e);
        }
        try
        {
            NetworkConfigCheck.CheckConflist(content);
        }
        catch (CniException e)
        {
            throw new InstallException(InstallProblem.InvalidConflist,
                $"--conflist {path}: {NetworkConfigCheck.Describe(e)}; nothing was installed", e);
        }
        return new Conflist(name, content);
    }
}

/// <summary>What install and uninstall do to a node's CNI folders; each returns one line per name it looked at.</summary>
public static class Installer
{
    public static readonly FileName Executable = FileName.Of("ipvlan-cni");
    /// <summary>The IPAM plugin's name: the same executable, which answers as the IPAM plugin when called by it.</summary>
    public static readonly FileName IpamExecutable = FileName.Of("ipvlan-cni-ipam");

    /// <summary>
    /// The executables ipvlan-cni runs for its subcommands (Libc.ExecCompanion: from its own folder), installed and
    /// removed with it. Written before ipvlan-cni, so that a new plugin never looks for a companion not there yet.
    /// </summary>
    public static readonly FileName[] Companions =
        [FileName.Of("ipvlan-cni-agent"), FileName.Of("ipvlan-cni-explain"), FileName.Of("ipvlan-cni-install")];

    /// <summary>
    /// ipvlan-cni and its companions from the folder of the running executable (this is ipvlan-cni-install, which
    /// ipvlan-cni execs), in the order install writes them. Each is read whole by its name: a concurrent install
    /// renames a complete file over a name, so what is read is one build or the other, never half of one.
    /// </summary>
    public static List<(FileName Name, byte[] Content)> ReadExecutables()
    {
        string folder = Path.GetDirectoryName(Environment.ProcessPath)
            ?? throw new InstallException(InstallProblem.Failed, "the running executable's folder is unknown");
        var files = new List<(FileName, byte[])>();
        foreach (var name in Companions.Append(Executable))
        {
            string path = Path.Join(folder, name.Value);
            try
            {
                files.Add((name, File.ReadAllBytes(path)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InstallException(InstallProblem.Failed,
                    $"{path}: cannot read it ({e.Message}); install copies ipvlan-cni and its companions from its own folder, nothing was installed", e);
            }
        }
        return files;
    }

    const UnixFileMode ExecutableMode = (UnixFileMode)0b111_101_101; // 0755
    const UnixFileMode ConfigMode = (UnixFileMode)0b110_100_100; // 0644

    /// <summary>
    /// The executables first (the companions, then ipvlan-cni and its IPAM name), then the conflist: a conflist that
    /// names a plugin not yet on the node would fail every pod of the network meanwhile. Names that are already
    /// current are left alone.
    /// </summary>
    public static IReadOnlyList<string> Install(IReadOnlyList<(FileName Name, byte[] Content)> executables, InstallFolder binDir, InstallFolder confDir, Conflist? conflist)
    {
        var report = new List<string>();
        using (var bin = FolderWriter.Lock(binDir))
        {
            foreach (var (name, content) in executables)
            {
                string path = bin.PathOf(name);
                if (bin.HasFile(name, content, ExecutableMode))
                    report.Add($"{path}: current");
                else
                {
                    bool existed = bin.Exists(name);
                    bin.ReplaceFile(name, content, ExecutableMode);
                    report.Add($"{path}: {(existed ? "replaced" : "installed")} ({content.Length} bytes)");
                }
            }

            // A relative symlink: it follows every later replacement of the executable, and resolves the same from a
            // container that mounts the host's folder elsewhere.
            string ipam = $"{bin.PathOf(IpamExecutable)} -> {Executable}";
            if (bin.HasSymlink(IpamExecutable, Executable.Value))
                report.Add($"{ipam}: current");
            else
            {
                bool existed = bin.Exists(IpamExecutable);
                bin.ReplaceSymlink(IpamExecutable, Executable.Value);
                report.Add($"{ipam}: {(existed ? "replaced" : "installed")}");
            }
        }

        if (conflist is not null)
        {
            using var conf = FolderWriter.Lock(confDir);
            string path = conf.PathOf(conflist.Name);
            if (conf.HasFile(conflist.Name, conflist.Content, ConfigMode))
                report.Add($"{path}: current");
            else
            {
                bool existed = conf.Exists(conflist.Name);
                conf.ReplaceFile(conflist.Name, conflist.Content, ConfigMode);
                report.Add($"{path}: {(existed ? "replaced" : "written")}");
            }
        }
        return report;
    }

    /// <summary>
    /// The conflist first (no new pod gets configured for a plugin about to go), then both names of the executable.
    /// Pods attached meanwhile keep their interfaces; their DEL needs the executable back (see the README).
    /// </summary>
    public static IReadOnlyList<string> Uninstall(InstallFolder binDir, InstallFolder confDir, FileName? conflist)
    {
        var report = new List<string>();
        if (conflist is { } name)
        {
            using var conf = FolderWriter.Lock(confDir);
            string path = conf.PathOf(name);
            if (conf.Exists(name))
            {
                // Only a conflist of ours: a file of another plugin under that name is not ours to delete.
                byte[] content;
                try
                {
                    content = IpvlanCni.Interop.RegularFile.Read(path, Conflist.MaxBytes);
                }
                catch (Exception e) when (e is IpvlanCni.Interop.UnsafePathException or IpvlanCni.Interop.SystemCallException)
                {
                    content = []; // not a conflist of ours (a FIFO there is not even opened)
                }
                if (!NetworkConfigCheck.UsesPlugin(content))
                    throw new InstallException(InstallProblem.InvalidConflist,
                        $"--conflist {path}: not a conflist with a plugin of type \"{NetworkConfigCheck.PluginType}\"; not removed, nothing was changed");
            }
            report.Add($"{path}: {(conf.Remove(name) ? "removed" : "not present")}");
        }

        using var bin = FolderWriter.Lock(binDir);
        foreach (var file in new[] { IpamExecutable, Executable }.Concat(Companions))
            report.Add($"{bin.PathOf(file)}: {(bin.Remove(file) ? "removed" : "not present")}");
        return report;
    }
}
