using IpvlanCni.Interop;

namespace IpvlanCni.Install;

/// <summary>
/// A folder that exists and that this process may create and rename files in, named by an option (--bin-dir,
/// --conf-dir). The constructor is the only check: everything downstream takes the type.
/// </summary>
public sealed record InstallFolder
{
    public string Option { get; }
    public string FullPath { get; }

    InstallFolder(string option, string fullPath) => (Option, FullPath) = (option, fullPath);

    public static InstallFolder Open(string option, string path)
    {
        if (path.Contains('\0'))
            throw new InstallException(InstallProblem.FolderMissing, $"{option} '{path}': not a path (contains NUL)");
        string full = Path.GetFullPath(path);
        if (!Directory.Exists(full))
            throw new InstallException(InstallProblem.FolderMissing, File.Exists(full)
                ? $"{option} {full}: not a folder"
                : $"{option} {full}: no such folder (create it first; install never creates the runtime's folders)");
        var errno = Libc.CanModifyDirectory(full);
        if (errno != Errno.None)
            throw new InstallException(InstallProblem.FolderNotWritable,
                $"{option} {full}: not writable by this process ({ErrnoInfo.Describe((int)errno)})");
        return new InstallFolder(option, full);
    }

    public string PathOf(FileName name) => Path.Join(FullPath, name.Value);
}

/// <summary>A plain file name inside an <see cref="InstallFolder"/>: no separator, not "." or "..", not empty.</summary>
public readonly record struct FileName
{
    public string Value { get; }

    FileName(string value) => Value = value;

    public static bool TryParse(string text, out FileName name, out string problem)
    {
        name = default;
        problem = text.Length == 0 ? "is empty"
            : text is "." or ".." ? "is not a file name"
            : text.Contains('/') || text.Contains('\0') ? "must be a plain file name (no '/')"
            : text.Length > 255 ? "is longer than 255 characters"
            : "";
        if (problem.Length > 0)
            return false;
        name = new FileName(text);
        return true;
    }

    public static FileName Of(string text) =>
        TryParse(text, out var name, out string problem) ? name : throw new ArgumentException($"'{text}' {problem}");

    public override string ToString() => Value;
}
