print("lapwing-numa: not yet built")
