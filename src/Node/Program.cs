return await MoEMesh.Node.Cli.MoEMeshCommand.RunAsync(args);
