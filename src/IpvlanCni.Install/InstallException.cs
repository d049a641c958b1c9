namespace IpvlanCni.Install;

/// <summary>Why install or uninstall refused; the value is the exit status.</summary>
public enum InstallProblem
{
    /// <summary>A system call failed while writing (disk full, I/O error, a lock held too long).</summary>
    Failed = 1,
    FolderMissing = 3,
    FolderNotWritable = 4,
    InvalidConflist = 5,
}

/// <summary>A refusal in words that name the folder or file; nothing was changed unless the message says so.</summary>
public sealed class InstallException(InstallProblem problem, string message, Exception? inner = null) : Exception(message, inner)
{
    public InstallProblem Problem { get; } = problem;
}
