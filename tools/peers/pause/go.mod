module local/pausepeer

go 1.24.0
