namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>Where the repository and the built programs are: each project's own output folder.</summary>
public static class Artifacts
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Release or Debug: the configuration this test assembly was built in.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";

    public static string SiloDll => Output("Silo", "Billing.Silo.dll");

    public static string AgentSiloDll => Output(Path.Combine("tests", "Billing.AgentSilo"), "Billing.AgentSilo.dll");

    /// <summary>The HTTP gateway, or null when this tree has no built Client project.</summary>
    public static string? GatewayDll
    {
        get
        {
            var path = Path.Combine(RepositoryRoot, "Client", "bin", Configuration, "net10.0", "Billing.Client.dll");
            return File.Exists(path) ? path : null;
        }
    }

    public static string RunScript => Path.Combine(RepositoryRoot, "run.sh");

    private static string Output(string project, string dll)
    {
        var path = Path.Combine(RepositoryRoot, project, "bin", Configuration, "net10.0", dll);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is not built: dotnet build Billing.sln -c {Configuration}", path);
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Billing.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Billing.sln not found above {AppContext.BaseDirectory}.");
    }
}
